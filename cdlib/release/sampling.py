"""Canary analysis as a time series: sample the metrics during a pause, fail fast.

During an analysed canary pause the canary group's counters are read every
``interval`` seconds. Each reading is judged over the traffic since the pause began
(:func:`~cdlib.release.analysis.measure`), so a sample is conclusive once the pause has
seen ``min_requests`` requests (the minimum sample). A failing sample beyond
``failure_limit`` ends the pause at once: the canary rolls back within one interval of
the threshold being crossed, not at the end of the pause.

Every sample is kept in the release's history record (``samples``), one entry per
metric: time, metric, value, threshold, verdict, requests and the weights then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cdlib.release.analysis import Counters, Measurement, Thresholds, measure

#: Metric names as stored in samples.
ERROR_RATE = "error_rate"
RESPONSE_TIME = "response_time_ms"


@dataclass(frozen=True)
class Sample:
    """One metric at one moment of a canary pause, as stored in the history record.

    ``verdict`` is ``pass``, ``fail`` or ``inconclusive`` (fewer requests than the
    minimum sample); ``threshold`` is ``None`` for a metric without a limit.
    """

    time: float
    step: str
    metric: str
    value: float | None
    threshold: float | None
    verdict: str
    requests: int
    weights: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the history file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Sample | None:
        """Rebuild a stored sample; ``None`` for an entry that is not one (hand-edited)."""
        if not isinstance(data, dict):
            return None
        try:
            value = data.get("value")
            threshold = data.get("threshold")
            weights = data.get("weights") or {}
            return cls(
                time=float(data["time"]),
                step=str(data.get("step", "")),
                metric=str(data["metric"]),
                value=None if value is None else float(value),
                threshold=None if threshold is None else float(threshold),
                verdict=str(data.get("verdict", "")),
                requests=int(data.get("requests", 0)),
                weights={str(k): int(v) for k, v in dict(weights).items()},
            )
        except (KeyError, TypeError, ValueError):
            return None


def samples_of(
    m: Measurement, t: Thresholds, *, step: str, weights: Mapping[str, int]
) -> list[Sample]:
    """The samples one measurement makes: the 5xx rate, and the response time if known."""
    now = time.time()
    inconclusive = m.outcome == "inconclusive"
    rate_fail = m.error_rate is not None and not inconclusive and m.error_rate > t.max_error_rate
    out = [
        Sample(
            now,
            step,
            ERROR_RATE,
            m.error_rate,
            t.max_error_rate,
            "inconclusive" if inconclusive else ("fail" if rate_fail else "pass"),
            m.requests,
            dict(weights),
        )
    ]
    if m.response_time_ms is not None:
        limit = t.max_response_time_ms
        slow = limit is not None and m.response_time_ms > limit
        out.append(
            Sample(
                now,
                step,
                RESPONSE_TIME,
                m.response_time_ms,
                limit,
                "inconclusive" if inconclusive else ("fail" if slow else "pass"),
                m.requests,
                dict(weights),
            )
        )
    return out


@dataclass
class Sampler:
    """Samples one pause: reads counters every ``interval`` until the pause ends or fails.

    Args:
        read: reads the canary group's counters; given the seconds since the pause began
            (a window for routers that sum over a period, such as CloudWatch).
        cumulative: counters only grow (HAProxy): judge the difference from the first
            reading; else each reading is judged on its own.
        sleep: waits (the release's sleep, which stops early on ``cdlib abort``).
        record: called with each sample's entries (history, console).
    """

    thresholds: Thresholds
    read: Callable[[float], Counters]
    cumulative: bool
    sleep: Callable[[float], None]
    record: Callable[[Measurement, float, float], None]
    interval: float = 10.0
    clock: Callable[[], float] = time.monotonic

    def run(self, pause: float) -> list[Measurement]:
        """Sample for ``pause`` seconds; the measurements to judge the step on.

        Ends early with the failing measurements once more than ``failure_limit`` samples
        failed; else returns the last one (the traffic of the whole pause).
        """
        start = self.clock()
        end = start + pause
        before = self.read(0.0) if self.cumulative else None
        failed: list[Measurement] = []
        last: Measurement | None = None
        while True:
            now = self.clock()
            self.sleep(max(0.0, min(end, now + self.interval) - now))
            now = self.clock()
            m = measure(before, self.read(now - start), self.thresholds)
            last = m
            self.record(m, now - start, max(0.0, end - now))
            if m.outcome == "fail":
                failed.append(m)
                if len(failed) > self.thresholds.failure_limit:
                    return failed
            if now >= end:
                return [last]
