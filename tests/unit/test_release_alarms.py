"""The alarm watch: names checked without AWS, states read through DescribeAlarms."""

from __future__ import annotations

from typing import Any

import pytest

from cdlib.release.alarms import AlarmFired, AlarmWatch, bad_alarm_names, missing


class FakeCloudWatch:
    """DescribeAlarms over a dict of states; counts the calls."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.calls = 0

    def describe_alarms(self, AlarmNames: list[str], **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {
            "MetricAlarms": [
                {"AlarmName": n, "StateValue": self.states[n]}
                for n in AlarmNames
                if n in self.states
            ]
        }


def test_missing_names_and_bad_names() -> None:
    cw = FakeCloudWatch({"a": "OK"})
    assert missing(cw, ["a", "b"]) == ["b"]
    assert bad_alarm_names(["ok", "", "x\n", 3]) and not bad_alarm_names(["web-5xx"])


def test_watch_polls_at_most_every_interval_and_names_the_alarm() -> None:
    now = [0.0]
    cw = FakeCloudWatch({"a": "OK", "b": "OK"})
    watch = AlarmWatch(cw, ["a", "b"], interval=10, clock=lambda: now[0])
    watch.check("after the shift")
    cw.states["b"] = "ALARM"
    now[0] = 5
    watch.check("after the shift")  # within the interval: no call, no alarm seen
    assert cw.calls == 1
    now[0] = 11
    with pytest.raises(AlarmFired) as exc:
        watch.check("during the bake time")
    assert exc.value.alarms == ("b",)
    assert str(exc.value) == "CloudWatch alarm b in ALARM during the bake time"
