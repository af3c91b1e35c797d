"""CloudWatch alarms watched by a release: checked before traffic moves, polled after.

A strategy with ``alarms=["name", ...]`` names CloudWatch alarms that say the new
version is hurting users (error rates, latency, a business metric). Before anything is
touched every name must exist (``DescribeAlarms``); a missing one is bad input. Once the
release starts, an alarm already in ``ALARM`` stops it before any traffic moves; from
then until the end of the bake time the alarms are polled at every pause of the release,
and an alarm in ``ALARM`` raises :class:`AlarmFired`, which the strategy handles like
any failure after the shift: traffic goes back to the previous group.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from cdlib.release.failed import ReleaseFailed
from cdlib.traffic.aws_api import call, error_code

#: CloudWatch alarm names: 1-255 printable characters.
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
#: Alarm names one DescribeAlarms call takes.
_BATCH = 100


class AlarmFired(ReleaseFailed):
    """A watched alarm is in ``ALARM``; ``alarms`` names it (or them)."""

    def __init__(self, alarms: Sequence[str], when: str) -> None:
        self.alarms = tuple(alarms)
        names = ", ".join(self.alarms)
        super().__init__(f"CloudWatch alarm {names} in ALARM {when}")


def bad_alarm_names(names: Sequence[Any]) -> list[str]:
    """Messages for names that cannot be CloudWatch alarm names (no AWS call)."""
    return [
        f"alarm name {n!r} is not a CloudWatch alarm name (1-255 printable characters)"
        for n in names
        if not isinstance(n, str) or not _NAME_RE.match(n)
    ]


def cloudwatch_for(router: Any) -> Any:
    """A CloudWatch client in the router spec's region and endpoint, if it has them."""
    from cdlib.traffic.aws_api import cloudwatch_client

    region = getattr(router, "region", None)
    endpoint = getattr(router, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL")
    return cloudwatch_client(region=region, endpoint_url=endpoint)


def describe(client: Any, names: Sequence[str]) -> dict[str, str]:
    """Alarm name -> state (``OK``, ``ALARM``, ``INSUFFICIENT_DATA``) of those that exist."""
    out: dict[str, str] = {}
    wanted = list(dict.fromkeys(names))
    for i in range(0, len(wanted), _BATCH):
        try:
            resp = call(
                client.describe_alarms,
                AlarmNames=wanted[i : i + _BATCH],
                AlarmTypes=["MetricAlarm", "CompositeAlarm"],
            )
        except Exception as exc:
            code = error_code(exc)
            if not code:
                raise
            raise ReleaseFailed(
                f"CloudWatch DescribeAlarms for {', '.join(wanted)} refused ({code}): {exc}"
            ) from None
        for kind in ("MetricAlarms", "CompositeAlarms"):
            for a in resp.get(kind, []):
                out[str(a["AlarmName"])] = str(a.get("StateValue", ""))
    return out


def missing(client: Any, names: Sequence[str]) -> list[str]:
    """The names no alarm has (in the order given)."""
    found = describe(client, names)
    return [n for n in names if n not in found]


class AlarmWatch:
    """Polls the named alarms at most every ``interval`` seconds.

    Args:
        client: a CloudWatch client.
        names: the alarms to watch.
        interval: least seconds between two DescribeAlarms calls while polling.
        clock: monotonic time (tests pass their own).
    """

    def __init__(
        self,
        client: Any,
        names: Sequence[str],
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.names = tuple(names)
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def firing(self) -> list[str]:
        """The watched alarms now in ``ALARM`` (one DescribeAlarms call)."""
        self._last = self._clock()
        states = describe(self.client, self.names)
        return [n for n in self.names if states.get(n) == "ALARM"]

    def check(self, when: str, *, force: bool = False) -> None:
        """Raise :class:`AlarmFired` when an alarm is in ``ALARM``; between polls (unless
        ``force``) it asks AWS only once ``interval`` has passed since the last call."""
        if not self.names:
            return
        if not force and self._last is not None and self._clock() - self._last < self.interval:
            return
        fired = self.firing()
        if fired:
            raise AlarmFired(fired, when)


__all__ = ["AlarmFired", "AlarmWatch", "bad_alarm_names", "cloudwatch_for", "describe", "missing"]
