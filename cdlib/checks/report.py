"""What a check found: failures, per-attempt outcomes and the final report.

Evaluation (pure) returns an :class:`Outcome`; the runner wraps each outcome in an
:class:`Attempt` with its timing and gathers them into a :class:`CheckReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Longest excerpt of observed data (a body, stdout, a file) kept per attempt.
EXCERPT_CHARS = 500


class FailureKind(StrEnum):
    """Why an attempt failed; :class:`~cdlib.checks.retry.Retry` retries by kind."""

    CONNECT = "connect"  # refused, unreachable, DNS
    TIMEOUT = "timeout"  # no answer within the per-attempt timeout
    TLS = "tls"  # certificate or handshake problem
    STATUS = "status"  # HTTP status not expected
    BODY = "body"  # HTTP body substring / regex mismatch
    JSON = "json"  # JSON path mismatch or body not JSON
    HEADER = "header"  # response header mismatch
    LATENCY = "latency"  # answered, but over the latency budget
    EXIT_CODE = "exit_code"  # command exit code not expected
    OUTPUT = "output"  # command output mismatch
    NOT_RUNNING = "not_running"  # process / service state not expected
    MISSING = "missing"  # file absence / presence not expected
    CONTENT = "content"  # file content mismatch
    ERROR = "error"  # the probe itself could not run (no python3, bad output)


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold."""

    kind: FailureKind
    message: str


@dataclass(frozen=True)
class Outcome:
    """The verdict on one observation: the failures found and an excerpt of what was seen."""

    failures: tuple[Failure, ...] = ()
    observed: str = ""
    #: Measured time of the probed operation (an HTTP request), if any.
    elapsed: float | None = None

    @property
    def ok(self) -> bool:
        """True when no expectation failed."""
        return not self.failures

    @property
    def kinds(self) -> frozenset[FailureKind]:
        """The kinds of all failures."""
        return frozenset(f.kind for f in self.failures)

    @property
    def reason(self) -> str:
        """All failure messages joined, or ``"ok"``."""
        return "; ".join(f.message for f in self.failures) or "ok"

    @classmethod
    def fail(cls, kind: FailureKind, message: str, observed: str = "") -> Outcome:
        """An outcome with a single failure."""
        return cls((Failure(kind, message),), observed)


@dataclass(frozen=True)
class Attempt:
    """One try of a check."""

    number: int
    outcome: Outcome
    #: Wall time of the whole attempt (probe and evaluation), seconds.
    duration: float

    @property
    def ok(self) -> bool:
        """True when the attempt passed."""
        return self.outcome.ok

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "number": self.number,
            "ok": self.ok,
            "kinds": sorted(k.value for k in self.outcome.kinds),
            "reason": self.outcome.reason,
            "duration": round(self.duration, 4),
            "elapsed": None if self.outcome.elapsed is None else round(self.outcome.elapsed, 4),
            "observed": self.outcome.observed,
        }


@dataclass
class CheckReport:
    """Every attempt of one check on one target and the final verdict."""

    check: str
    target: str
    attempts: list[Attempt] = field(default_factory=list)
    #: Why the check stopped, e.g. ``"passed on attempt 3"`` or ``"gave up after 5 attempts"``.
    stop_reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the last attempt passed."""
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def reason(self) -> str:
        """The final reason: the last attempt's failures (or ``ok``) and why retries stopped."""
        if not self.attempts:
            return self.stop_reason or "not run"
        last = self.attempts[-1].outcome.reason
        return f"{last} ({self.stop_reason})" if self.stop_reason else last

    @property
    def duration(self) -> float:
        """Sum of the attempts' durations (waits between attempts excluded)."""
        return sum(a.duration for a in self.attempts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view, for events and ``--json`` output."""
        return {
            "check": self.check,
            "target": self.target,
            "ok": self.ok,
            "reason": self.reason,
            "attempts": [a.to_dict() for a in self.attempts],
        }

    def render(self) -> str:
        """A human-readable multi-line report: verdict, then one line per attempt."""
        head = f"{'PASS' if self.ok else 'FAIL'} {self.check} on {self.target}: {self.reason}"
        lines = [head]
        for a in self.attempts:
            status = "ok" if a.ok else ",".join(sorted(k.value for k in a.outcome.kinds))
            lines.append(f"  attempt {a.number}: {status} in {a.duration:.3f}s: {a.outcome.reason}")
        last = self.attempts[-1] if self.attempts else None
        if last is not None and not last.ok and last.outcome.observed:
            lines.append(f"  observed: {last.outcome.observed}")
        return "\n".join(lines)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more chars]"


__all__ = [
    "EXCERPT_CHARS",
    "Attempt",
    "CheckReport",
    "Failure",
    "FailureKind",
    "Outcome",
    "excerpt",
]
