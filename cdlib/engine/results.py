"""Structured results of a run: per task and host, per host, per play, and the recap."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cdlib.engine.task import Status
from cdlib.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ChangedTask",
    "HostStats",
    "RunResult",
    "TaskResult",
]


@dataclass
class TaskResult:
    """One task on one host."""

    play: str
    host: str
    task: str
    status: Status
    msg: str = ""
    diff: str | None = None
    changes: list[str] = field(default_factory=list)
    origin: str = ""
    duration: float = 0.0
    handler: bool = False
    #: A failure that ``ignore_errors`` let pass.
    ignored: bool = False
    #: The exception behind a failed or unreachable result, kept whole.
    exception: BaseException | None = field(default=None, repr=False)
    #: Position of the task in its play (of the handler among handlers), so output can
    #: group one task's results whose names differ per host; ``None`` outside plays.
    index: int | None = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        """True for a changed result."""
        return self.status is Status.CHANGED

    def to_event(self, *, with_diff: bool) -> dict[str, Any]:
        """The JSON event for this result."""
        ev: dict[str, Any] = {
            "event": "task_result",
            "play": self.play,
            "host": self.host,
            "task": self.task,
            "status": self.status.value,
            "changed": self.changed,
            "msg": self.msg,
            "changes": self.changes,
            "origin": self.origin,
            "duration": round(self.duration, 4),
        }
        if self.handler:
            ev["handler"] = True
        if self.ignored:
            ev["ignored"] = True
        if with_diff and self.diff:
            ev["diff"] = self.diff
        if self.exception is not None:
            ev["exception"] = type(self.exception).__name__
        return ev


class ChangedTask(tuple[str, str]):
    """A ``(host, task)`` pair of :meth:`RunResult.changed`, told apart by task identity.

    It unpacks and compares like the plain pair, and a plain ``(host, task)`` tuple
    equals it; two tasks with the same label (three ``line_in_file`` on one path)
    stay two items, since they differ in ``play``, ``position`` (index in the play)
    or ``origin`` (file:line where the task was made).
    """

    play: str
    position: int | None
    origin: str
    handler: bool

    def __new__(cls, result: TaskResult) -> ChangedTask:
        """The changed pair of ``result``."""
        self = super().__new__(cls, (result.host, result.task))
        self.play = result.play
        self.position = result.index
        self.origin = result.origin
        self.handler = result.handler
        return self

    @property
    def host(self) -> str:
        """The host that changed."""
        return self[0]

    @property
    def task(self) -> str:
        """The task's label."""
        return self[1]

    def _key(self) -> tuple[object, ...]:
        return (*self, self.play, self.position, self.origin, self.handler)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChangedTask):
            return self._key() == other._key()
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    # Equal to the plain pair, so it hashes as the pair does.
    __hash__ = tuple.__hash__


@dataclass
class HostStats:
    """Counts per status for one host, as in Ansible's recap."""

    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0

    def add(self, r: TaskResult) -> None:
        """Count a result (``changed`` also counts as ``ok``, as Ansible does)."""
        if r.status is Status.OK:
            self.ok += 1
        elif r.status is Status.CHANGED:
            self.ok += 1
            self.changed += 1
        elif r.status is Status.SKIPPED:
            self.skipped += 1
        elif r.status is Status.UNREACHABLE:
            self.unreachable += 1
        elif r.ignored:
            self.ignored += 1
        else:
            self.failed += 1

    def as_dict(self) -> dict[str, int]:
        """Plain dict for events and JSON."""
        return dict(self.__dict__)


@dataclass
class RunResult:
    """Everything a run did; what :func:`cdlib.run` returns."""

    results: list[TaskResult] = field(default_factory=list)
    stats: dict[str, HostStats] = field(default_factory=dict)
    check: bool = False
    aborted: str | None = None
    #: The run was interrupted (Ctrl-C): no task started after it; exit code 99.
    interrupted: bool = False

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts with at least one (not ignored) failure."""
        return [h for h, s in self.stats.items() if s.failed]

    @property
    def unreachable_hosts(self) -> list[str]:
        """Hosts that could not be reached."""
        return [h for h, s in self.stats.items() if s.unreachable]

    @property
    def ok(self) -> bool:
        """True when every host succeeded."""
        return not self.failed_hosts and not self.unreachable_hosts and self.aborted is None

    @property
    def exit_code(self) -> int:
        """0 all good; 2 a host failed; 3 a host unreachable (and none failed); 99
        interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.failed_hosts or self.aborted:
            return EXIT_FAILED
        if self.unreachable_hosts:
            return EXIT_UNREACHABLE
        return EXIT_OK

    def changed(self) -> set[tuple[str, str]]:
        """(host, task) pairs that changed (or would change, in check mode).

        One item per task and host, even where tasks share a label: each is a
        :class:`ChangedTask`, which compares like the plain pair but keeps tasks apart
        by their position in the play and their origin.
        """
        return {ChangedTask(r) for r in self.results if r.changed}

    def for_host(self, host: str) -> list[TaskResult]:
        """Results of one host in order."""
        return [r for r in self.results if r.host == host]

    def counts(self) -> Counter[str]:
        """Results per status over all hosts."""
        return Counter(r.status.value for r in self.results)

    def recap_event(self) -> dict[str, Any]:
        """The final JSON event."""
        return {
            "event": "recap",
            "check": self.check,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "aborted": self.aborted,
            "hosts": {h: s.as_dict() for h, s in self.stats.items()},
        }
