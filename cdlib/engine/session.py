"""A run in progress: its pool, connections, results; the engine's :class:`RunContext`.

One :class:`Session` runs the items of a playbook in order. An item that runs plays of
its own (a release deploying a group) gets a nested session that shares the pool, the
connections, the event sinks and the redactor, and whose results count in the parent
run as they happen.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cdlib.connections.base import Connection
from cdlib.engine.contract import Runnable
from cdlib.engine.errors import PlaybookError
from cdlib.engine.events import Events
from cdlib.engine.factcache import FactCache
from cdlib.engine.play import Play
from cdlib.engine.prepare import Preparer, plays_path, raise_errors, search_path
from cdlib.engine.results import HostStats, RunResult, TaskResult
from cdlib.engine.schedule import run_prepared
from cdlib.engine.secrets import Redactor
from cdlib.engine.selection import StepGate
from cdlib.engine.templating import Templar
from cdlib.inventory.model import Host, Inventory


@dataclass
class Shared:
    """What every session of one run shares."""

    pool: ThreadPoolExecutor
    factory: Callable[[Host], Connection]
    events: Events
    redact: Redactor
    owns_connections: bool
    #: ``--step``: asks before each task; None runs every task.
    step: StepGate | None = None
    #: ``--force-handlers``: notified handlers run on a host that failed too.
    force_handlers: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    conns: dict[str, Connection] = field(default_factory=dict)

    def close(self, result: RunResult) -> None:
        """End the run: stop the pool, close connections it opened, send ``run_end``."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.owns_connections:
            for c in self.conns.values():
                with contextlib.suppress(Exception):
                    c.close()
        self.events.run_end(result)


class Session:
    """Runs items with one set of modes, inventory and extra vars; collects results."""

    def __init__(
        self,
        shared: Shared,
        preparer: Preparer,
        *,
        check: bool,
        diff: bool,
        forks: int,
        parent: Session | None = None,
    ) -> None:
        self.shared = shared
        self.preparer = preparer
        self._check = check
        self._diff = diff
        self._forks = forks
        self.parent = parent
        self.result = RunResult(check=check)
        self.dead: set[str] = set()  # failed or unreachable: out of later plays
        self.stop = threading.Event()
        self._facts: dict[str, FactCache] = {}

    # -- RunContext ------------------------------------------------------------
    @property
    def inventory(self) -> Inventory:
        """The run's inventory."""
        return self.preparer.inventory

    @property
    def check(self) -> bool:
        """Check mode."""
        return self._check

    @property
    def diff(self) -> bool:
        """Content diffs."""
        return self._diff

    @property
    def forks(self) -> int:
        """Hosts at once."""
        return self._forks

    @property
    def extra_vars(self) -> Mapping[str, object]:
        """Extra vars of this session."""
        return self.preparer.extra_vars

    @property
    def limit(self) -> str | None:
        """The ``--limit`` of this session."""
        return self.preparer.limit

    @property
    def metadata(self) -> Mapping[str, str]:
        """The run's free-form labels (``--meta``)."""
        return self.preparer.metadata

    @property
    def redact(self) -> Redactor:
        """The run's redactor."""
        return self.shared.redact

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The run's host threads."""
        return self.shared.pool

    @property
    def step(self) -> StepGate | None:
        """The ``--step`` gate, if the run asks before each task."""
        return self.shared.step

    @property
    def force_handlers(self) -> bool:
        """``--force-handlers``: notified handlers run on a host that failed too."""
        return self.shared.force_handlers

    def connection(self, host: Host) -> Connection:
        """The run's connection to ``host``."""
        return self.host_connection(host)[0]

    def host_connection(self, host: Host) -> tuple[Connection, FactCache]:
        """The connection to ``host`` and this session's fact cache for it."""
        with self.shared.lock:
            c = self.shared.conns.get(host.name)
            if c is None:
                c = self.shared.conns[host.name] = self.shared.factory(host)
            f = self._facts.get(host.name)
            if f is None:
                f = self._facts[host.name] = FactCache(c)
            return c, f

    def start(self, label: str, hosts: list[str]) -> None:
        """Send ``play_start``."""
        self.shared.events.play_start(label, hosts, self.check)

    def emit(self, result: TaskResult) -> None:
        """Count ``result`` here and in every enclosing session, then send it."""
        with self.shared.lock:
            s: Session | None = self
            while s is not None:
                s.result.results.append(result)
                s.result.stats.setdefault(result.host, HostStats()).add(result)
                s = s.parent
        # Events redacts every text of the result, the exception included.
        self.shared.events.task_result(result)

    def progress(self, event: Mapping[str, object]) -> None:
        """Send a progress event to the sinks that take them."""
        self.shared.events.progress(event)

    def run_play(self, play: Play) -> None:
        """Run ``play`` as the preparer rendered it."""
        p = self.preparer.prepared.get(id(play))
        if p is None:
            raise PlaybookError(f"play {play.name!r} was not validated before it ran")
        run_prepared(self, p)

    def run_plays(
        self,
        plays: Sequence[Play],
        *,
        limit: str | None = None,
        extra_vars: Mapping[str, object] | None = None,
    ) -> RunResult:
        """Validate and run ``plays`` in a nested session; return its results."""
        extra = {**self.extra_vars, **(extra_vars or {})}
        self.redact.collect(extra)
        for p in plays:
            self.redact.collect(dict(p.vars))
        where = plays_path(plays)
        prep = Preparer(
            self.inventory,
            limit,
            extra,
            Templar(search_path(where)),
            where.parent,
            metadata=self.metadata,
            selection=self.preparer.selection.nested(),
        )
        raise_errors([e for p in plays for e in prep.prepare(p)])
        child = Session(
            self.shared, prep, check=self.check, diff=self.diff, forks=self.forks, parent=self
        )
        child.run_items(plays)
        return child.result

    # -- engine ----------------------------------------------------------------
    def mark_dead(self, host: str) -> None:
        """Keep ``host`` out of this session's later plays."""
        with self.shared.lock:
            self.dead.add(host)

    def run_items(self, items: Sequence[Runnable]) -> None:
        """Execute validated items in order until one stops the run."""
        try:
            for item in items:
                if self.stop.is_set():
                    break
                item.execute(self)
        except KeyboardInterrupt:
            # No task starts after this; those running finish (the pool waits for them).
            self.stop.set()
            self.result.aborted = "interrupted"
            self.result.interrupted = True
            if self.parent is not None:
                raise  # a nested run (a release's deploy) stops the item that ran it too
