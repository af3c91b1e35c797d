"""Retry policy for checks, built on tenacity.

A check that fails may be tried again: up to ``attempts`` times, within a total
``timeout``, waiting an exponential backoff with random jitter between tries, and only
when the attempt failed for a kind listed in ``retry_on``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying, retry_if_result

from cdlib.checks.report import Attempt, FailureKind

#: An attempt is never started with less time than this left of the total timeout.
MIN_ATTEMPT_SECONDS = 0.05


@dataclass(frozen=True)
class Retry:
    """How often and how long to try a check.

    ``attempts`` bounds the count, ``timeout`` (seconds, optional) the total time from the
    first attempt; whichever comes first ends the retries. Waits start at ``backoff``
    seconds, double each time up to ``max_backoff``, plus up to ``jitter`` random seconds.
    ``retry_on`` lists the :class:`FailureKind` values (or their names) worth retrying
    (``None``: all); it is stored as a ``frozenset`` of :class:`FailureKind`.
    """

    attempts: int = 1
    timeout: float | None = None
    backoff: float = 0.5
    max_backoff: float = 5.0
    jitter: float = 0.25
    retry_on: Collection[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be >= 1, got {self.attempts}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"retry timeout must be > 0 seconds, got {self.timeout}")
        if self.backoff < 0 or self.max_backoff < 0 or self.jitter < 0:
            raise ValueError("retry backoff, max_backoff and jitter must be >= 0")
        if self.retry_on is not None:
            # Accept plain strings ("connect") for convenience; store the enum.
            object.__setattr__(self, "retry_on", self.kinds(self.retry_on))

    @classmethod
    def kinds(cls, names: Iterable[str]) -> frozenset[FailureKind]:
        """Parse failure kind names; ``ValueError`` names the unknown one and the valid ones."""
        out = set()
        for n in names:
            try:
                out.add(FailureKind(n))
            except ValueError:
                valid = ", ".join(k.value for k in FailureKind)
                raise ValueError(f"unknown failure kind {n!r}; valid: {valid}") from None
        return frozenset(out)

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...), jitter included."""
        base: float = min(self.max_backoff, self.backoff * 2.0 ** max(0, attempt - 2))
        # Jitter spreads retries of many hosts so they do not hit a service in lockstep.
        return base + random.uniform(0, self.jitter)

    def retries(self, kinds: frozenset[FailureKind]) -> bool:
        """Whether a failure of these kinds is worth another attempt."""
        return self.retry_on is None or any(k in self.retry_on for k in kinds)

    def run(self, attempt: Callable[[int, float | None], Attempt]) -> tuple[list[Attempt], str]:
        """Call ``attempt(number, seconds_left)`` until it passes or the policy gives up.

        ``seconds_left`` is what remains of the total timeout (``None`` without one), so
        the caller can bound its own probe. Returns every attempt and why it stopped.
        """
        start = time.monotonic()
        done: list[Attempt] = []

        def left() -> float | None:
            if self.timeout is None:
                return None
            return self.timeout - (time.monotonic() - start)

        def call() -> Attempt:
            a = attempt(len(done) + 1, left())
            done.append(a)
            return a

        def stop(state: RetryCallState) -> bool:
            remaining = left()
            return state.attempt_number >= self.attempts or (
                remaining is not None and remaining < MIN_ATTEMPT_SECONDS
            )

        def wait(state: RetryCallState) -> float:
            w = self.wait_before(state.attempt_number + 1)
            remaining = left()
            if remaining is not None:
                # Never sleep past the deadline: leave room for one last short attempt.
                w = min(w, max(0.0, remaining - MIN_ATTEMPT_SECONDS))
            return w

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_result(lambda a: not a.ok and self.retries(a.outcome.kinds)),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        retrying(call)
        return done, self._why(done, left())

    def _why(self, done: list[Attempt], remaining: float | None) -> str:
        last = done[-1]
        n = len(done)
        if last.ok:
            return f"passed on attempt {n}" if n > 1 else ""
        if not self.retries(last.outcome.kinds):
            kinds = ",".join(sorted(k.value for k in last.outcome.kinds))
            return f"not retried: {kinds} not in retry_on after attempt {n}"
        if n >= self.attempts:
            if self.attempts == 1:
                return ""  # no retries were asked for: nothing to explain
            return f"gave up after {n} attempt{'s' if n > 1 else ''}"
        return f"total timeout {self.timeout}s reached after {n} attempts"


#: The policy when none is given: one attempt.
ONCE = Retry()

__all__ = ["MIN_ATTEMPT_SECONDS", "ONCE", "Retry"]
