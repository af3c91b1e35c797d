"""Canary analysis: judge a step from traffic metrics and smoke checks.

A measurement compares two readings of a group's counters (before and after the step's
pause). Too few requests is *inconclusive*, never a pass. Thresholds are checked on the
difference; ``failure_limit`` failed measurements fail the analysis (as in Argo Rollouts:
the limit is how many failures are tolerated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Outcome = Literal["pass", "fail", "inconclusive"]


class Counters(Protocol):
    """What analysis reads from a router about one group: counters since the load
    balancer started, or the sums of a window (see ``cdlib.traffic.base.RouterMetrics``)."""

    @property
    def requests(self) -> int:
        """Requests answered by the group so far."""
        ...

    @property
    def errors_5xx(self) -> int:
        """Of those, answers with a 5xx status."""
        ...

    @property
    def response_time_ms(self) -> float | None:
        """Average response time in milliseconds, or ``None`` when unknown."""
        ...


@dataclass(frozen=True)
class Thresholds:
    """Limits a canary step must stay within.

    Args:
        max_error_rate: highest share of 5xx responses (0.01 = 1 %).
        max_response_time_ms: highest average response time, or ``None``.
        min_requests: fewer requests than this in a measurement is inconclusive.
        failure_limit: failed measurements tolerated before the analysis fails.
        inconclusive_limit: inconclusive measurements tolerated before the analysis
            is inconclusive as a whole.
    """

    max_error_rate: float = 0.01
    max_response_time_ms: float | None = None
    min_requests: int = 20
    failure_limit: int = 0
    inconclusive_limit: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError(f"max_error_rate must be within 0..1, got {self.max_error_rate}")
        if self.min_requests < 1:
            raise ValueError("min_requests must be at least 1: no data is never a pass")
        if self.failure_limit < 0 or self.inconclusive_limit < 0:
            raise ValueError("failure_limit and inconclusive_limit cannot be negative")


@dataclass(frozen=True)
class Measurement:
    """One measurement: counts over an interval and its verdict."""

    outcome: Outcome
    reason: str
    requests: int
    errors: int
    error_rate: float | None
    response_time_ms: float | None


def measure(before: Counters | None, after: Counters, t: Thresholds) -> Measurement:
    """Judge the traffic between two readings of the same group's counters."""
    req = after.requests - (before.requests if before else 0)
    err = after.errors_5xx - (before.errors_5xx if before else 0)
    if req < 0 or err < 0:
        # Counters went backwards: the load balancer restarted in between.
        return Measurement(
            "inconclusive",
            "counters were reset (load balancer restart)",
            max(req, 0),
            max(err, 0),
            None,
            after.response_time_ms,
        )
    rt = after.response_time_ms
    if req < t.min_requests:
        return Measurement(
            "inconclusive",
            f"only {req} requests (need {t.min_requests})",
            req,
            err,
            err / req if req else None,
            rt,
        )
    rate = err / req
    if rate > t.max_error_rate:
        return Measurement(
            "fail",
            f"5xx rate {rate:.2%} over {t.max_error_rate:.2%} ({err}/{req})",
            req,
            err,
            rate,
            rt,
        )
    if t.max_response_time_ms is not None and rt is not None and rt > t.max_response_time_ms:
        return Measurement(
            "fail",
            f"response time {rt:.0f} ms over {t.max_response_time_ms:.0f} ms",
            req,
            err,
            rate,
            rt,
        )
    return Measurement("pass", f"5xx rate {rate:.2%} ({err}/{req})", req, err, rate, rt)


@dataclass
class Analysis:
    """Accumulates measurements and smoke results into one verdict."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    measurements: list[Measurement] = field(default_factory=list)
    check_failures: list[str] = field(default_factory=list)

    def add(self, m: Measurement) -> None:
        """Record a measurement."""
        self.measurements.append(m)

    def add_check_failure(self, reason: str) -> None:
        """A smoke check failed: always a failure."""
        self.check_failures.append(reason)

    def verdict(self) -> tuple[Outcome, str]:
        """``fail`` beats ``inconclusive`` beats ``pass``; no data is never a pass."""
        if self.check_failures:
            return "fail", "smoke checks failed: " + "; ".join(self.check_failures)
        fails = [m for m in self.measurements if m.outcome == "fail"]
        if len(fails) > self.thresholds.failure_limit:
            return "fail", fails[-1].reason
        inconclusive = [m for m in self.measurements if m.outcome == "inconclusive"]
        if not self.measurements or len(inconclusive) > self.thresholds.inconclusive_limit:
            why = inconclusive[-1].reason if inconclusive else "no measurement"
            return "inconclusive", why
        last = self.measurements[-1]
        return "pass", last.reason
