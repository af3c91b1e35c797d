"""Plays: a name, a host pattern, variables, tasks and handlers."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdlib.engine.errors import Origin, PlaybookError
from cdlib.engine.origin import caller_origin
from cdlib.engine.task import Plan, Task

if TYPE_CHECKING:
    from cdlib.engine.contract import RunContext, Runnable, Scope

#: Items (plays, strategies) created while a playbook file is being loaded go here.
_collector: contextvars.ContextVar[list[Runnable] | None] = contextvars.ContextVar(
    "cdlib_play_collector", default=None
)


def register(item: Runnable) -> None:
    """Add ``item`` to the playbook being loaded (a no-op outside of loading).

    :class:`Play` calls it when created; anything else a playbook can run (a release
    strategy) calls it too, so creating the object in a playbook file is enough.
    """
    bucket = _collector.get()
    if bucket is not None:
        bucket.append(item)


@dataclass
class Handler:
    """A task that runs once at the end of a play on hosts where it was notified."""

    name: str
    task: Task[Plan]


@dataclass
class Play:
    """A set of tasks to run on the hosts matching ``hosts``.

    Args:
        name: shown in output.
        hosts: an inventory host pattern (``"web"``, ``"web:&prod"``, ``"all"``).
        vars: play variables (override inventory vars; ``-e`` overrides these).
        serial: batch size: a count, a percentage (``"25%"``) or a list of those for
            growing batches (``[1, "25%", "100%"]``); the last one repeats.
        forks: at most this many hosts at once (default: the run's ``forks``).
        max_fail_percentage: stop the play when more than this share of a batch failed.
        any_errors_fatal: a failure on any host stops the whole play.
        become: run commands through sudo (overrides ``ansible_become``).
        tags: tags every task of the play inherits (for ``--tags`` / ``--skip-tags``).
        gather_facts: read the host facts (``facts``, ``ansible_*``) at the start of the
            play even when no task refers to them (they are read anyway when one does).
        allow_empty: a ``hosts`` pattern that matches no host of the inventory is bad
            input (a typo such as ``"webb"``), unless this is true; then the play runs
            on no host. Hosts that ``--limit`` leaves out are never an error.
    """

    name: str
    hosts: str = "all"
    vars: Mapping[str, Any] = field(default_factory=dict)
    serial: int | str | Sequence[int | str] | None = None
    forks: int | None = None
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    become: bool | None = None
    tags: str | Sequence[str] = ()
    gather_facts: bool = False
    tasks: list[Task[Plan]] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)
    allow_empty: bool = False
    origin: Origin = field(default_factory=caller_origin, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PlaybookError("a play needs a name", origin=self.origin)
        if not isinstance(self.hosts, str) or not self.hosts.strip():
            raise PlaybookError(
                f"play {self.name!r}: 'hosts' must be a pattern string", origin=self.origin
            )
        _serial_spec(self.serial, self.origin)
        self.tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        if not all(isinstance(t, str) and t for t in self.tags):
            raise PlaybookError(
                f"play {self.name!r}: 'tags' must be a string or a list of strings",
                origin=self.origin,
            )
        if self.max_fail_percentage is not None and not 0 <= self.max_fail_percentage <= 100:
            raise PlaybookError("max_fail_percentage must be between 0 and 100", origin=self.origin)
        register(self)

    @property
    def label(self) -> str:
        """Name shown in output: the play's name."""
        return self.name

    def task(self, task: Task[Plan]) -> Task[Plan]:
        """Add a task; returns it."""
        if not isinstance(task, Task):
            raise PlaybookError(
                f"play {self.name!r}: task() needs a task such as cdlib.tasks.file(...), "
                f"got {type(task).__name__}",
                origin=caller_origin(),
            )
        self.tasks.append(task)
        return task

    def add(self, *tasks: Task[Plan]) -> None:
        """Add several tasks in order."""
        for t in tasks:
            self.task(t)

    def handler(self, name: str, task: Task[Plan]) -> Handler:
        """Define handler ``name``; tasks notify it with ``notify="name"``."""
        if any(h.name == name for h in self.handlers):
            raise PlaybookError(f"handler {name!r} is defined twice", origin=caller_origin())
        h = Handler(name, task)
        self.handlers.append(h)
        return h

    def validate(self, scope: Scope[Play] | None = None) -> list[PlaybookError]:
        """Errors in the play's structure (notify names a missing handler ...).

        With a ``scope`` (the engine validating a playbook), also render every task
        for every selected host, and keep that rendering for :meth:`execute`.
        """
        if scope is not None:
            return scope.prepare(self)
        errors = []
        known = {h.name for h in self.handlers}
        for t in [*self.tasks, *(h.task for h in self.handlers)]:
            for n in t.notify:
                if n not in known:
                    from cdlib.engine.errors import suggest

                    errors.append(t.error(f"notifies unknown handler {n!r}{suggest(n, known)}"))
        if not self.tasks:
            errors.append(PlaybookError(f"play {self.name!r} has no tasks", origin=self.origin))
        return errors

    def execute(self, ctx: RunContext[Play]) -> None:
        """Run the play as prepared by :meth:`validate` (called by the engine)."""
        ctx.run_play(self)


def _serial_spec(serial: Any, origin: Origin) -> None:
    items = serial if isinstance(serial, list | tuple) else [serial]
    for it in items:
        if it is None and serial is None:
            continue
        ok = (isinstance(it, int) and not isinstance(it, bool) and it > 0) or (
            isinstance(it, str)
            and it.endswith("%")
            and it[:-1].strip().isdigit()
            and 0 < int(it[:-1]) <= 100
        )
        if not ok:
            raise PlaybookError(
                f"serial must be a positive count, a percentage like '25%' or a list of those; "
                f"got {it!r}",
                origin=origin,
            )


def batches(hosts: list[str], serial: Any) -> list[list[str]]:
    """Split ``hosts`` into serial batches (Ansible's rules: the last size repeats)."""
    if serial is None:
        return [hosts] if hosts else []
    sizes = list(serial) if isinstance(serial, list | tuple) else [serial]
    out: list[list[str]] = []
    i = 0
    k = 0
    while i < len(hosts):
        spec = sizes[min(k, len(sizes) - 1)]
        n = max(1, int(len(hosts) * int(spec[:-1]) / 100)) if isinstance(spec, str) else int(spec)
        out.append(hosts[i : i + n])
        i += n
        k += 1
    return out


class collect_plays:
    """Collect every :class:`Play` (and other registered item) created in the block."""

    def __enter__(self) -> list[Runnable]:
        self.plays: list[Runnable] = []
        self._token = _collector.set(self.plays)
        return self.plays

    def __exit__(self, *exc: object) -> None:
        _collector.reset(self._token)


def flatten(items: Iterable[Any]) -> list[Any]:
    """Plays (and release strategies) from a mix of them and lists of them."""
    out: list[Any] = []
    for it in items:
        if isinstance(it, list | tuple):
            out.extend(flatten(it))
        else:
            out.append(it)
    return out
