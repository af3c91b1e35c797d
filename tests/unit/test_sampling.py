"""Canary analysis samples a pause and fails fast once a threshold is crossed."""

from __future__ import annotations

from dataclasses import dataclass

from cdlib.release.analysis import Measurement, Thresholds
from cdlib.release.sampling import Sample, Sampler, samples_of


@dataclass
class _C:
    requests: int
    errors_5xx: int
    response_time_ms: float | None = None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def _sampler(clock: _Clock, rps: int, err: float, t: Thresholds) -> tuple[Sampler, list[float]]:
    seen: list[float] = []

    def read(_elapsed: float) -> _C:
        n = int(clock.now * rps)
        return _C(n, int(n * err))

    def record(m: Measurement, elapsed: float, left: float) -> None:
        seen.append(elapsed)

    return (
        Sampler(
            t,
            read=read,
            cumulative=True,
            sleep=clock.sleep,
            record=record,
            interval=1.0,
            clock=clock,
        ),
        seen,
    )


def test_fails_at_the_first_sample_with_the_minimum_sample() -> None:
    clock = _Clock()
    t = Thresholds(max_error_rate=0.05, min_requests=20)
    sampler, seen = _sampler(clock, rps=7, err=0.5, t=t)
    out = sampler.run(60.0)
    # 7, 14 requests: inconclusive; 21 at 3 s: over the minimum, 50 % errors -> fail now.
    assert [m.outcome for m in out] == ["fail"] and seen == [1.0, 2.0, 3.0]
    assert clock.now == 3.0


def test_failure_limit_tolerates_failing_samples() -> None:
    clock = _Clock()
    t = Thresholds(max_error_rate=0.05, min_requests=20, failure_limit=2)
    sampler, _ = _sampler(clock, rps=30, err=0.5, t=t)
    assert [m.outcome for m in sampler.run(60.0)] == ["fail"] * 3 and clock.now == 3.0


def test_a_good_pause_runs_to_its_end_and_is_judged_on_all_of_it() -> None:
    clock = _Clock()
    sampler, seen = _sampler(clock, rps=30, err=0.0, t=Thresholds(min_requests=20))
    out = sampler.run(4.5)
    assert seen == [1.0, 2.0, 3.0, 4.0, 4.5] and clock.now == 4.5
    assert [m.outcome for m in out] == ["pass"] and out[0].requests == 135


def test_samples_round_trip_and_tolerate_bad_entries() -> None:
    m = Measurement("fail", "x", 40, 20, 0.5, 120.0)
    t = Thresholds(max_error_rate=0.05, max_response_time_ms=100)
    got = samples_of(m, t, step="analysis at 10%", weights={"green": 10})
    assert [(s.metric, s.verdict) for s in got] == [
        ("error_rate", "fail"),
        ("response_time_ms", "fail"),
    ]
    assert [Sample.from_json(s.to_json()) for s in got] == got
    assert Sample.from_json({"metric": "x"}) is None and Sample.from_json([1]) is None
