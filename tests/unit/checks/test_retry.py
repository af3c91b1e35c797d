"""The retry policy: counts, total timeout, backoff, retry_on and the stop reason."""

from __future__ import annotations

import time

import pytest

from cdlib.checks import Attempt, FailureKind, Outcome, Retry


def scripted(outcomes: list[Outcome], seen: list[tuple[int, float | None]]):  # type: ignore[no-untyped-def]
    def attempt(n: int, left: float | None) -> Attempt:
        seen.append((n, left))
        return Attempt(n, outcomes[min(n, len(outcomes)) - 1], 0.0)

    return attempt


REFUSED = Outcome.fail(FailureKind.CONNECT, "refused")
TLS = Outcome.fail(FailureKind.TLS, "bad cert")
OK = Outcome()


def test_passes_on_third_attempt() -> None:
    seen: list[tuple[int, float | None]] = []
    done, why = Retry(attempts=5, backoff=0, jitter=0).run(scripted([REFUSED, REFUSED, OK], seen))
    assert [a.ok for a in done] == [False, False, True]
    assert why == "passed on attempt 3"
    assert [n for n, _ in seen] == [1, 2, 3]


def test_gives_up_after_attempts() -> None:
    done, why = Retry(attempts=3, backoff=0, jitter=0).run(scripted([REFUSED], []))
    assert len(done) == 3 and why == "gave up after 3 attempts"


def test_single_attempt_has_no_stop_reason() -> None:
    done, why = Retry().run(scripted([REFUSED], []))
    assert len(done) == 1 and why == ""


def test_only_chosen_kinds_are_retried() -> None:
    policy = Retry(attempts=5, backoff=0, jitter=0, retry_on=frozenset({FailureKind.CONNECT}))
    done, why = policy.run(scripted([REFUSED, TLS, OK], []))
    assert len(done) == 2
    assert why == "not retried: tls not in retry_on after attempt 2"


def test_retry_on_accepts_strings() -> None:
    assert Retry(retry_on=frozenset({"connect"})).retry_on == {FailureKind.CONNECT}  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown failure kind 'conect'"):
        Retry.kinds(["conect"])


def test_total_timeout_bounds_the_attempts_and_is_passed_on() -> None:
    seen: list[tuple[int, float | None]] = []
    done, why = Retry(attempts=1000, timeout=0.5, backoff=0.05, max_backoff=0.1, jitter=0).run(
        scripted([REFUSED], seen)
    )
    assert 2 <= len(done) < 1000
    assert why.startswith("total timeout 0.5s reached after")
    lefts = [left for _, left in seen]
    assert all(left is not None and left <= 0.5 for left in lefts)
    assert lefts == sorted(lefts, reverse=True)


def test_backoff_grows_with_jitter_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    Retry(attempts=5, backoff=0.1, max_backoff=0.3, jitter=0.05).run(scripted([REFUSED], []))
    assert len(slept) == 4
    for wait, base in zip(slept, [0.1, 0.2, 0.3, 0.3], strict=True):
        assert base <= wait <= base + 0.05


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"timeout": 0}, {"backoff": -1}, {"jitter": -0.1}]
)
def test_bad_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Retry(**kwargs)  # type: ignore[arg-type]
