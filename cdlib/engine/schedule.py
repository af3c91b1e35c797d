"""Scheduling: the hosts of a play in parallel, in serial batches, with handlers.

Each host goes through a play's tasks on its own (like Ansible's ``free`` strategy),
bounded by the run's ``forks`` and the play's; ``serial`` batches,
``max_fail_percentage``, ``any_errors_fatal``, ``run_once`` and handlers coordinate
hosts where a play asks for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from cdlib.connections.base import Connection, UnreachableError
from cdlib.engine.errors import PlaybookError
from cdlib.engine.execute import Batch, BatchStopped, execute_task, make_result
from cdlib.engine.factcache import FactCache
from cdlib.engine.hostfacts import read_facts, with_facts
from cdlib.engine.play import batches
from cdlib.engine.prepare import Prepared, Preparer, prepare_task
from cdlib.engine.results import RunResult, TaskResult
from cdlib.engine.secrets import Redactor
from cdlib.engine.selection import StepGate
from cdlib.engine.task import FlushHandlers, HostContext, Plan, Status, Task
from cdlib.errors import CdlibError
from cdlib.facts.handlers import PendingHandlersFact, clear_command, mark_command, pending
from cdlib.inventory.model import Host


class SessionView(Protocol):
    """What the scheduler uses of the run in progress (:class:`cdlib.engine.session.Session`).

    A protocol, because the session module calls this one: the dependency points one way.
    """

    preparer: Preparer
    result: RunResult
    dead: set[str]
    stop: threading.Event

    @property
    def check(self) -> bool:
        """Check mode."""
        ...

    @property
    def diff(self) -> bool:
        """Diff mode."""
        ...

    @property
    def extra_vars(self) -> Mapping[str, object]:
        """The run's extra vars."""
        ...

    @property
    def redact(self) -> Redactor:
        """The run's redactor."""
        ...

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The run's thread pool."""
        ...

    @property
    def step(self) -> StepGate | None:
        """``--step``: asks before each task."""
        ...

    @property
    def force_handlers(self) -> bool:
        """``--force-handlers``: notified handlers run on a host that failed too."""
        ...

    def host_connection(self, host: Host) -> tuple[Connection, FactCache]:
        """The host's connection and fact cache."""
        ...

    def start(self, label: str, hosts: list[str]) -> None:
        """Send ``play_start``."""
        ...

    def emit(self, result: TaskResult) -> None:
        """Count and send a result."""
        ...

    def mark_dead(self, host: str) -> None:
        """Keep ``host`` out of later plays."""
        ...


@dataclass
class _RunOnce:
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    result: TaskResult | None = None


def run_prepared(s: SessionView, p: Prepared) -> None:
    """Run a prepared play on its hosts that are still in the run, batch by batch."""
    names = [h.name for h in p.hosts if h.name not in s.dead]
    s.start(p.play.name, names)
    if not p.selected:
        return  # every task was left out by tags or --start-at-task
    hosts = {h.name: h for h in p.hosts}
    limit = threading.Semaphore(p.play.forks) if p.play.forks else None
    for batch in batches(names, p.play.serial):
        once: dict[int, _RunOnce] = {i: _RunOnce() for i, t in enumerate(p.selected) if t.run_once}
        futures: list[Future[bool]] = [
            s.pool.submit(_host_worker, s, p, hosts[n], once, limit) for n in batch
        ]
        ok = [f.result() for f in futures]
        failed = ok.count(False)
        if s.stop.is_set():
            return
        pct = p.play.max_fail_percentage
        if pct is not None and failed and failed / len(batch) * 100 > pct:
            s.result.aborted = (
                f"play {p.play.name!r}: {failed} of {len(batch)} hosts failed, over "
                f"max_fail_percentage {pct:g}"
            )
            s.stop.set()
            return
        if failed == len(batch) and batch:
            # As Ansible: a batch where every host failed ends the play.
            return


def _host_worker(
    s: SessionView,
    p: Prepared,
    host: Host,
    once: dict[int, _RunOnce],
    limit: threading.Semaphore | None,
) -> bool:
    if limit is not None:
        limit.acquire()
    try:
        return _host_tasks(s, p, host, once)
    finally:
        if limit is not None:
            limit.release()


def _host_tasks(s: SessionView, p: Prepared, host: Host, once: dict[int, _RunOnce]) -> bool:
    tasks = p.tasks[host.name]
    play = p.play
    notified: set[str] = set()
    try:
        conn, facts = s.host_connection(host)
        conn.connect()
    except (CdlibError, ValueError) as exc:
        # Bad connection settings (a ValueError, an InventoryError) are a failure on
        # the host, not an unreachable host: retrying would not help.
        bad_settings = not isinstance(exc, UnreachableError)
        at = next((i for i, t in enumerate(tasks) if t is not None), None)
        first = tasks[at] if at is not None else None
        r = make_result(
            play.name,
            host.name,
            first.label if first else "connect",
            Status.FAILED if bad_settings else Status.UNREACHABLE,
            f"bad connection settings: {exc}" if bad_settings else str(exc),
            exc=exc,
            origin=str(first.origin) if first else "",
        )
        r.index = at
        s.emit(r)
        s.mark_dead(host.name)
        return False
    hv = p.vars[host.name]
    handlers = p.handlers[host.name]
    broken: dict[int, str] = {}
    #: Handlers that failed to render with the host's facts: they fail when notified.
    handler_errors: dict[str, str] = {}
    # Handlers an earlier run notified but never ran: read with the first batch of facts.
    left = [PendingHandlersFact(play.name)] if play.handlers else []
    if p.gather:
        try:
            hv = with_facts(hv, read_facts(facts, tasks, left), {**play.vars, **s.extra_vars})
        except UnreachableError as exc:
            s.emit(make_result(play.name, host.name, "gather facts", Status.UNREACHABLE, str(exc)))
            s.mark_dead(host.name)
            return False
        tasks, handlers = list(tasks), dict(handlers)
        for i in p.deferred:
            errs: list[PlaybookError] = []
            tasks[i] = prepare_task(p.selected[i], hv, s.preparer.templar, host.name, errs)
            if errs:
                broken[i] = str(errs[0])
        for hd in p.play.handlers:
            if hd.name in p.deferred_handlers:
                errs = []
                handlers[hd.name] = prepare_task(hd.task, hv, s.preparer.templar, host.name, errs)
                if errs:
                    handler_errors[hd.name] = str(errs[0])
    ctx = HostContext(host.name, conn, facts, hv, s.check, s.diff, s.redact)
    # Handlers whose marker is on the host (or queued in the batch) during this run.
    marked: set[str] = set()
    if left:
        facts.set_upcoming([*left, *(f for t in tasks if t is not None for f in t.facts())])
        try:
            again = pending(play.name, handlers, ctx.fact(left[0]))
        except UnreachableError as exc:
            s.emit(make_result(play.name, host.name, "handlers", Status.UNREACHABLE, str(exc)))
            s.mark_dead(host.name)
            return False
        if again:
            notified |= again
            marked |= again  # their markers are on the host already
            s.emit(
                make_result(
                    play.name,
                    host.name,
                    "pending handlers",
                    Status.OK,
                    "notified by an earlier run that did not run them: "
                    + ", ".join(h.name for h in play.handlers if h.name in again),
                )
            )

    def deliver(task: Task[Plan], r: TaskResult) -> bool:
        s.emit(r)
        if r.status is Status.CHANGED:
            _notify(s, play.name, ctx, notified, marked, task.notify)
        if r.status is Status.UNREACHABLE or (r.status is Status.FAILED and not task.ignore_errors):
            if s.force_handlers and r.status is Status.FAILED:
                # As Ansible's --force-handlers: what changed before the failure still
                # gets its handlers (the restart a release notified).
                _handlers(s, p, handlers, ctx, notified, handler_errors)
            s.mark_dead(host.name)
            if play.any_errors_fatal:
                s.result.aborted = f"any_errors_fatal: {r.task!r} failed on {host.name}"
                s.stop.set()
            return False
        return True

    # Batching holds changes back (see engine/execute.py); check mode changes nothing and
    # --step asks before each task, so neither batches.
    batch = None if s.check or s.step is not None else Batch(conn, facts, deliver)
    try:
        run = _HostRun(
            ctx, tasks, broken, handlers, handler_errors, notified, marked, batch, deliver
        )
        went = _host_loop(s, p, host, run, once)
        if went is False or (batch is not None and not batch.flush()):
            return False
    except BatchStopped:
        return False
    finally:
        facts.before_read = None
    if went is None:
        return True  # the run stopped: no handlers
    return _handlers(s, p, handlers, ctx, notified, handler_errors)


@dataclass
class _HostRun:
    """One host's state while it runs a play's tasks."""

    ctx: HostContext
    tasks: list[Task[Plan] | None]
    #: Tasks that failed to render on this host, by index.
    broken: dict[int, str]
    handlers: dict[str, Task[Plan] | None]
    #: Handlers that failed to render on this host, by name.
    handler_errors: dict[str, str]
    notified: set[str]
    #: Handlers whose marker is on the host (or queued in the batch).
    marked: set[str]
    batch: Batch | None
    #: Takes a result in play order; False stops the host.
    deliver: Callable[[Task[Plan], TaskResult], bool]


def _host_loop(
    s: SessionView, p: Prepared, host: Host, run: _HostRun, once: dict[int, _RunOnce]
) -> bool | None:
    """The play's tasks on one host; False when the host stops (a failure), None when
    the run stopped."""
    play = p.play
    ctx, facts, batch = run.ctx, run.ctx.facts, run.batch
    tasks, broken, handlers = run.tasks, run.broken, run.handlers
    notified, marked, deliver = run.notified, run.marked, run.deliver
    for i, task in enumerate(tasks):
        if s.stop.is_set():
            return None
        orig = p.selected[i]
        if s.step is not None and not s.step.allow(id(p), i, play.name, orig.label):
            s.emit(
                make_result(
                    play.name,
                    host.name,
                    orig.label,
                    Status.SKIPPED,
                    "declined at --step",
                    origin=str(orig.origin),
                )
            )
            continue
        if i in broken:
            r = make_result(
                play.name, host.name, orig.label, Status.FAILED, broken[i], origin=str(orig.origin)
            )
            if batch is not None and not batch.flush():
                return False
            s.emit(r)
            s.mark_dead(host.name)
            return False
        if task is None:
            r = make_result(
                play.name,
                host.name,
                orig.label,
                Status.SKIPPED,
                "condition is false",
                origin=str(orig.origin),
            )
            r.index = i
            if batch is not None:
                batch.deliver(orig, r)
            else:
                s.emit(r)
            continue
        if isinstance(task, FlushHandlers):
            if batch is not None and not batch.flush():
                return False
            if not _handlers(s, p, handlers, ctx, notified, run.handler_errors, task.label):
                return False
            notified.clear()
            marked.clear()
            continue
        facts.set_upcoming(f for t in tasks[i:] if t is not None for f in t.facts())
        after = next((t for t in tasks[i + 1 :] if t is not None), None)
        soon = after.facts() if after is not None else []
        if batch is not None:
            batch.soon = task.facts()
            if (task.run_once or not task.batchable) and not batch.flush():
                return False
        if task.run_once:
            got: TaskResult | None = _run_once(play.name, task, ctx, once[i])
        else:
            got = execute_task(play.name, task, ctx, soon=soon, batch=batch)
        if got is None:
            if batch is not None:
                batch.last.index = i  # held; delivered once its change ran
                # The markers of the handlers it notifies run right after its change,
                # in the same command (see _notify).
                new = _names(task.notify) - marked
                if new:
                    marked |= new
                    # In a subshell of its own: nothing in it can stop the batch.
                    batch.also(f"( {mark_command(play.name, new)}\n) >/dev/null 2>&1 || :")
            continue
        got.index = i
        ok = batch.deliver(task, got) if batch is not None else deliver(task, got)
        if not ok:
            return False
    if batch is not None:
        facts.set_upcoming(())
        batch.soon = ()
    return True


def _names(notify: str | tuple[str, ...] | list[str]) -> set[str]:
    return {notify} if isinstance(notify, str) else set(notify)


def _notify(
    s: SessionView,
    play: str,
    ctx: HostContext,
    notified: set[str],
    marked: set[str],
    notify: str | tuple[str, ...] | list[str],
) -> None:
    """Notify ``names``; a real run also leaves a marker on the host for each new one, so
    a run that ends before the handler ran leaves it to the next run. ``marked``: the
    handlers whose marker is already there (or went with a batched change)."""
    names = _names(notify)
    new = names - notified - marked
    notified.update(names)
    marked.update(names)
    if new and not s.check:
        # Best effort: a host that cannot keep the marker still runs the handler now.
        with contextlib.suppress(CdlibError):
            ctx.run(mark_command(play, new), check=False)


def _handlers(
    s: SessionView,
    p: Prepared,
    rendered: dict[str, Task[Plan] | None],
    ctx: HostContext,
    notified: set[str],
    errors: Mapping[str, str],
    flush: str = "",
) -> bool:
    """Run the notified handlers; ``errors``: those that failed to render on the host
    (they fail when notified); ``flush`` is the label of a ``flush_handlers`` task."""
    # Handlers may notify further handlers; run in definition order, once each.
    done: set[str] = set()
    ran: set[str] = set()
    ok = True
    progress = True
    while progress and ok:
        progress = False
        for n, hd in enumerate(p.play.handlers):
            if hd.name in notified and hd.name not in done:
                done.add(hd.name)
                progress = True
                if hd.name in errors:
                    r = make_result(
                        p.play.name,
                        ctx.host,
                        hd.name,
                        Status.FAILED,
                        errors[hd.name],
                        origin=str(hd.task.origin),
                    )
                    r.handler, r.index = True, n
                    s.emit(r)
                    s.mark_dead(ctx.host)
                    ok = False
                    break
                task = rendered[hd.name]
                if task is None:
                    ran.add(hd.name)  # its condition is false on this host: nothing to run
                    continue
                ctx.facts.set_upcoming(task.facts())
                r = _alone(execute_task(p.play.name, task, ctx, handler_name=hd.name))
                r.index = n
                s.emit(r)
                if r.status is Status.CHANGED:
                    _notify(s, p.play.name, ctx, notified, set(), task.notify)
                if r.status in (Status.FAILED, Status.UNREACHABLE) and not task.ignore_errors:
                    s.mark_dead(ctx.host)
                    ok = False
                    break
                ran.add(hd.name)
    if flush and not done:
        s.emit(make_result(p.play.name, ctx.host, flush, Status.OK, "no handlers notified"))
    if ran and not s.check:
        with contextlib.suppress(CdlibError):
            ctx.run(clear_command(p.play.name, ran), check=False)
    return ok


def _run_once(play: str, task: Task[Plan], ctx: HostContext, state: _RunOnce) -> TaskResult:
    with state.lock:
        mine = not state.started
        state.started = True
    if mine:
        try:
            state.result = _alone(execute_task(play, task, ctx))
        finally:
            state.done.set()
        return state.result
    state.done.wait()
    first = state.result
    if first is None or first.status in (Status.FAILED, Status.UNREACHABLE):
        who = first.host if first else "another host"
        return make_result(
            play,
            ctx.host,
            task.label,
            Status.FAILED,
            f"run_once task failed on {who}",
            origin=str(task.origin),
        )
    return make_result(
        play,
        ctx.host,
        task.label,
        Status.SKIPPED,
        f"run_once: ran on {first.host}",
        origin=str(task.origin),
    )


def _alone(r: TaskResult | None) -> TaskResult:
    # Without a batch, nothing is held: every task has its result.
    assert r is not None
    return r
