"""The runner: validate every play for every host, then run hosts in parallel.

Each host goes through a play's tasks on its own (like Ansible's ``free`` strategy),
bounded by ``forks``; serial batches, ``max_fail_percentage``, ``any_errors_fatal``,
``run_once`` and handlers coordinate hosts where a play asks for it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdlib.connections.base import Connection, UnreachableError
from cdlib.connections.factory import ConnectionOptions, connection_for
from cdlib.engine.errors import PlaybookError, PlaybookErrors, TaskFailed
from cdlib.engine.events import Events, EventSink
from cdlib.engine.factcache import FactCache
from cdlib.engine.play import Play, batches, flatten
from cdlib.engine.playbook import Playbook, load_playbook
from cdlib.engine.results import HostStats, RunResult, TaskResult
from cdlib.engine.secrets import Redactor
from cdlib.engine.task import Affects, HostContext, Plan, Status, Task, Then
from cdlib.engine.templating import Templar, TemplateError
from cdlib.facts.base import Fact
from cdlib.inventory.model import Host, Inventory

#: Stop collecting validation errors after this many; the first ones matter most.
MAX_REPORTED_ERRORS = 50


@dataclass
class _Prepared:
    """A play ready to run: its hosts and every task rendered for every host."""

    play: Play
    hosts: list[Host]
    tasks: dict[str, list[Task[Plan] | None]]  # None: ``when`` is false on that host
    handlers: dict[str, dict[str, Task[Plan] | None]]
    vars: dict[str, dict[str, Any]]


@dataclass
class _RunOnce:
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    result: TaskResult | None = None


def run(
    playbook: str | Path | Play | Playbook | Sequence[Play],
    inventory: Inventory | str | Path | Sequence[str | Path] | None = None,
    *,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    forks: int = 10,
    sinks: Sequence[EventSink] = (),
    connection_options: ConnectionOptions | None = None,
    connection_factory: Callable[[Host], Connection] | None = None,
) -> RunResult:
    """Run a playbook (a path, a :class:`Play` or a list of plays) and return the results.

    Every play is validated for every host before any host is touched; bad input
    raises :class:`PlaybookError` / :class:`PlaybookErrors` and changes nothing.
    ``check`` predicts changes without making them; ``diff`` adds content diffs.
    ``sinks`` receive events as the run goes (console, JSON Lines, callbacks).
    """
    book = _as_playbook(playbook)
    inv = _as_inventory(inventory, extra_vars, book.path.parent)
    redact = Redactor()
    redact.collect(dict(extra_vars or {}))
    for h in inv.hosts.values():
        redact.collect(h.vars)
    for p in book.plays:
        if isinstance(p, Play):
            redact.collect(dict(p.vars))
    try:
        templar = Templar(book.search_path)
        plays = [p for p in book.plays if isinstance(p, Play)]
        releases: list[Any] = [p for p in book.plays if not isinstance(p, Play)]
        prepared = prepare_plays(
            Playbook(book.path, plays), inv, limit, dict(extra_vars or {}), templar
        )
        errors = [e for r in releases for e in r.validate(inv, dict(extra_vars or {}))]
        if errors:
            raise errors[0] if len(errors) == 1 else PlaybookErrors(errors)
        by_play = {id(p.play): p for p in prepared}
        items: list[Any] = [by_play[id(p)] if isinstance(p, Play) else p for p in book.plays]
        runner = _Runner(
            items,
            check=check,
            diff=diff,
            forks=forks,
            events=Events(list(sinks), redact),
            redact=redact,
            factory=connection_factory or (lambda h: connection_for(h, connection_options)),
            owns_connections=connection_factory is None,
            inventory=inv,
            extra_vars=dict(extra_vars or {}),
            sinks=list(sinks),
        )
        return runner.run()
    except BaseException as exc:
        # Errors leave the run (and reach the CLI's ERROR line) with every secret masked.
        redact.exception(exc)
        raise


def _as_playbook(pb: str | Path | Play | Playbook | Sequence[Play]) -> Playbook:
    if isinstance(pb, Playbook):
        return pb
    if isinstance(pb, str | Path):
        return load_playbook(pb)
    plays = flatten([pb]) if isinstance(pb, Play) else flatten(list(pb))
    origin_file = Path(plays[0].origin.file) if plays else Path.cwd() / "playbook.py"
    return Playbook(origin_file if origin_file.is_absolute() else Path.cwd() / origin_file, plays)


def _as_inventory(
    inv: Inventory | str | Path | Sequence[str | Path] | None,
    extra: Mapping[str, Any] | None,
    playbook_dir: Path | None = None,
) -> Inventory:
    from cdlib.inventory import load_inventory

    if isinstance(inv, Inventory):
        if extra:
            for h in inv.hosts.values():
                h.vars.update(extra)
        return inv
    if inv is None:
        return Inventory([Host("localhost", {"ansible_connection": "local", **(extra or {})})])
    sources = [inv] if isinstance(inv, str | Path) else list(inv)
    # group_vars/ and host_vars/ beside the playbook apply too, as in Ansible.
    return load_inventory(sources, extra, playbook_dir=playbook_dir)


def host_vars(
    host: Host, play: Play, inv: Inventory, extra: Mapping[str, Any], playbook_dir: Path
) -> dict[str, Any]:
    """The variables a task sees on ``host``: inventory < play vars < extra vars < magic."""
    v: dict[str, Any] = dict(host.vars)
    v.update(play.vars)
    v.update(extra)
    v["inventory_hostname"] = host.name
    v["group_names"] = sorted(g for g in host.groups if g not in ("all", "ungrouped"))
    v["groups"] = {g: inv.group_hosts(g) for g in inv.groups}
    v["playbook_dir"] = str(playbook_dir)
    return v


def prepare_plays(
    book: Playbook, inv: Inventory, limit: str | None, extra: dict[str, Any], templar: Templar
) -> list[_Prepared]:
    """Validate every play and render its tasks and handlers for every selected host.

    Nothing touches a host here. All problems found (up to a limit) are raised together:
    one :class:`PlaybookError`, or :class:`PlaybookErrors` holding several.
    """
    errors: list[PlaybookError] = []
    out: list[_Prepared] = []
    limited: set[str] | None = None
    if limit:
        limited = {h.name for h in inv.select("all", limit)}
        if not limited:
            raise PlaybookError(f"--limit {limit!r} matches no host in the inventory")
    for play in book.plays:
        errors += play.validate()
        hosts = [h for h in inv.select(play.hosts) if limited is None or h.name in limited]
        p = _Prepared(play, hosts, {}, {}, {})
        for h in hosts:
            hv = host_vars(h, play, inv, extra, book.path.parent)
            p.vars[h.name] = hv
            p.tasks[h.name] = [_prepare_task(t, hv, templar, h.name, errors) for t in play.tasks]
            p.handlers[h.name] = {
                hd.name: _prepare_task(hd.task, hv, templar, h.name, errors) for hd in play.handlers
            }
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
        out.append(p)
    if errors:
        raise errors[0] if len(errors) == 1 else PlaybookErrors(_dedupe(errors))
    return out


def _dedupe(errors: list[PlaybookError]) -> list[PlaybookError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            out.append(e)
    return out


def _prepare_task(
    task: Task[Plan], hv: dict[str, Any], templar: Templar, host: str, errors: list[PlaybookError]
) -> Task[Plan] | None:
    try:
        if not task.should_run(hv, templar):
            return None
        return task.prepare(hv, templar)
    except TemplateError as exc:
        errors.append(PlaybookError(str(exc), origin=task.origin, task=task.label, host=host))
    except PlaybookError as exc:
        errors.append(
            PlaybookError(exc.reason, origin=exc.origin or task.origin, task=task.label, host=host)
        )
    return None


class _Runner:
    def __init__(
        self,
        plays: list[Any],
        *,
        check: bool,
        diff: bool,
        forks: int,
        events: Events,
        redact: Redactor,
        factory: Callable[[Host], Connection],
        inventory: Inventory,
        extra_vars: dict[str, Any],
        sinks: list[EventSink],
        owns_connections: bool = True,
    ) -> None:
        self.plays = plays
        self.inventory = inventory
        self.extra_vars = extra_vars
        self.sinks = sinks
        self.owns_connections = owns_connections
        self.check = check
        self.diff = diff
        self.forks = max(1, forks)
        self.events = events
        self.redact = redact
        self.factory = factory
        self.result = RunResult(check=check)
        self._conns: dict[str, Connection] = {}
        self._facts: dict[str, FactCache] = {}
        self._lock = threading.Lock()
        self._dead: set[str] = set()  # failed or unreachable: out of later plays
        self._stop = threading.Event()

    # -- top level ---------------------------------------------------------
    def run(self) -> RunResult:
        pool = ThreadPoolExecutor(max_workers=self.forks, thread_name_prefix="cdlib-host")
        try:
            for p in self.plays:
                if self._stop.is_set():
                    break
                if isinstance(p, _Prepared):
                    self._run_play(p, pool)
                else:
                    self._run_release(p)
        except KeyboardInterrupt:
            self._stop.set()
            self.result.aborted = "interrupted"
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if self.owns_connections:
                for c in self._conns.values():
                    with contextlib.suppress(Exception):
                        c.close()
            self.events.run_end(self.result)
        return self.result

    def _run_release(self, strategy: Any) -> None:
        from cdlib.release.strategy import ReleaseContext

        def shared(host: Host) -> Connection:
            return self._conn(host)[0]

        ctx = ReleaseContext(
            inventory=self.inventory,
            check=self.check,
            diff=self.diff,
            forks=self.forks,
            extra_vars=self.extra_vars,
            sinks=self.sinks,
            connection_factory=shared,
            result=self.result,
            emit=self._emit,
        )
        self.events.play_start(
            f"release {strategy.app} {strategy.version} ({strategy.kind})",
            [f"release:{strategy.app}"],
            self.check,
        )
        strategy.execute(ctx)

    def _run_play(self, p: _Prepared, pool: ThreadPoolExecutor) -> None:
        names = [h.name for h in p.hosts if h.name not in self._dead]
        self.events.play_start(p.play.name, names, self.check)
        hosts = {h.name: h for h in p.hosts}
        limit = threading.Semaphore(p.play.forks) if p.play.forks else None
        for batch in batches(names, p.play.serial):
            once: dict[int, _RunOnce] = {
                i: _RunOnce() for i, t in enumerate(p.play.tasks) if t.run_once
            }
            futures: list[Future[bool]] = [
                pool.submit(self._host_worker, p, hosts[n], once, limit) for n in batch
            ]
            ok = [f.result() for f in futures]
            failed = ok.count(False)
            if self._stop.is_set():
                return
            pct = p.play.max_fail_percentage
            if pct is not None and failed and failed / len(batch) * 100 > pct:
                self.result.aborted = (
                    f"play {p.play.name!r}: {failed} of {len(batch)} hosts failed, over "
                    f"max_fail_percentage {pct:g}"
                )
                self._stop.set()
                return
            if failed == len(batch) and batch:
                # As Ansible: a batch where every host failed ends the play.
                return

    # -- per host ----------------------------------------------------------
    def _conn(self, host: Host) -> tuple[Connection, FactCache]:
        with self._lock:
            c = self._conns.get(host.name)
            if c is None:
                c = self._conns[host.name] = self.factory(host)
                self._facts[host.name] = FactCache(c)
            return c, self._facts[host.name]

    def _host_worker(
        self,
        p: _Prepared,
        host: Host,
        once: dict[int, _RunOnce],
        limit: threading.Semaphore | None,
    ) -> bool:
        if limit is not None:
            limit.acquire()
        try:
            return self._host_tasks(p, host, once)
        finally:
            if limit is not None:
                limit.release()

    def _host_tasks(self, p: _Prepared, host: Host, once: dict[int, _RunOnce]) -> bool:
        tasks = p.tasks[host.name]
        play = p.play
        notified: set[str] = set()
        try:
            conn, facts = self._conn(host)
            conn.connect()
        except (UnreachableError, ValueError) as exc:
            first = next((t for t in tasks if t is not None), None)
            self._record(
                p,
                host,
                first.label if first else "connect",
                Status.UNREACHABLE,
                str(exc),
                exc=exc,
                origin=str(first.origin) if first else "",
            )
            with self._lock:
                self._dead.add(host.name)
            return False
        ctx = HostContext(
            host.name, conn, facts, p.vars[host.name], self.check, self.diff, self.redact
        )
        for i, task in enumerate(tasks):
            if self._stop.is_set():
                return True
            orig = play.tasks[i]
            if task is None:
                self._record(
                    p,
                    host,
                    orig.label,
                    Status.SKIPPED,
                    "condition is false",
                    origin=str(orig.origin),
                )
                continue
            facts.set_upcoming(f for t in tasks[i:] if t is not None for f in t.facts())
            after = next((t for t in tasks[i + 1 :] if t is not None), None)
            soon = after.facts() if after is not None else []
            if task.run_once:
                r = self._run_once(p, host, task, ctx, once[i])
            else:
                r = self._execute(p, host, task, ctx, soon=soon)
            self._emit(r)
            if r.status is Status.CHANGED:
                notified.update(task.notify)
            if r.status is Status.UNREACHABLE or (
                r.status is Status.FAILED and not task.ignore_errors
            ):
                with self._lock:
                    self._dead.add(host.name)
                if play.any_errors_fatal:
                    self.result.aborted = f"any_errors_fatal: {r.task!r} failed on {host.name}"
                    self._stop.set()
                return False
        return self._handlers(p, host, ctx, notified)

    def _handlers(self, p: _Prepared, host: Host, ctx: HostContext, notified: set[str]) -> bool:
        # Handlers may notify further handlers; run in definition order, once each.
        done: set[str] = set()
        progress = True
        while progress:
            progress = False
            for hd in p.play.handlers:
                if hd.name in notified and hd.name not in done:
                    done.add(hd.name)
                    progress = True
                    task = p.handlers[host.name][hd.name]
                    if task is None:
                        continue
                    ctx.facts.set_upcoming(task.facts())
                    r = self._execute(p, host, task, ctx, handler_name=hd.name)
                    self._emit(r)
                    if r.status is Status.CHANGED:
                        notified.update(task.notify)
                    if r.status in (Status.FAILED, Status.UNREACHABLE) and not task.ignore_errors:
                        with self._lock:
                            self._dead.add(host.name)
                        return False
        return True

    def _run_once(
        self, p: _Prepared, host: Host, task: Task[Plan], ctx: HostContext, state: _RunOnce
    ) -> TaskResult:
        with state.lock:
            mine = not state.started
            state.started = True
        if mine:
            try:
                state.result = self._execute(p, host, task, ctx)
            finally:
                state.done.set()
            return state.result
        state.done.wait()
        first = state.result
        if first is None or first.status in (Status.FAILED, Status.UNREACHABLE):
            who = first.host if first else "another host"
            return self._make(
                p,
                host,
                task.label,
                Status.FAILED,
                f"run_once task failed on {who}",
                origin=str(task.origin),
            )
        return self._make(
            p,
            host,
            task.label,
            Status.SKIPPED,
            f"run_once: ran on {first.host}",
            origin=str(task.origin),
        )

    def _execute(
        self,
        p: _Prepared,
        host: Host,
        task: Task[Plan],
        ctx: HostContext,
        handler_name: str = "",
        soon: Sequence[Fact[object]] = (),
    ) -> TaskResult:
        t0 = time.monotonic()
        label = handler_name or task.label
        plan: Plan | None = None
        try:
            plan = task.plan(ctx)
            msg = plan.ok_msg
            if not self.check and plan.applies:
                affects = plan.stale_paths
                # The change command also re-reads the facts it makes stale.
                ctx.facts.arm(affects, soon)
                try:
                    applied = task.apply(ctx, plan)
                except BaseException:
                    ctx.facts.disarm()
                    raise
                msg = applied or msg
                ctx.facts.settle(affects)
            status = Status.CHANGED if plan.changed else Status.OK
            if plan.then is Then.SKIP:
                status, msg = Status.SKIPPED, plan.ok_msg
            elif self.check and plan.changed:
                ctx.predicted += 1
                predicted = task.predict(plan)
                if predicted is None:
                    ctx.facts.invalidate(plan.stale_paths)
                else:
                    for fact, value in predicted:
                        ctx.facts.predict(fact, value)
            r = self._make(
                p,
                host,
                label,
                status,
                msg,
                origin=str(task.origin),
                diff=plan.diff,
                changes=list(plan.changes),
            )
        except UnreachableError as exc:
            r = self._make(
                p, host, label, Status.UNREACHABLE, exc.reason, exc=exc, origin=str(task.origin)
            )
        except (TaskFailed, PlaybookError, TemplateError) as exc:
            r = self._make(
                p, host, label, Status.FAILED, str(exc), exc=exc, origin=str(task.origin)
            )
            if plan is not None and plan.affects is Affects.EVERYTHING:
                ctx.facts.invalidate(None)
        except Exception as exc:
            r = self._make(
                p,
                host,
                label,
                Status.FAILED,
                f"internal error in {task.kind}: {type(exc).__name__}: {exc}",
                exc=exc,
                origin=str(task.origin),
            )
            ctx.facts.invalidate(None)
        r.duration = time.monotonic() - t0
        r.handler = bool(handler_name)
        r.ignored = r.status is Status.FAILED and task.ignore_errors
        if task.no_log:
            r.msg = "output hidden (no_log)" if r.msg else ""
            r.diff = None
            r.changes = ["hidden (no_log)"] if r.changes else []
        return r

    def _make(
        self,
        p: _Prepared,
        host: Host,
        task: str,
        status: Status,
        msg: str,
        *,
        origin: str = "",
        exc: BaseException | None = None,
        diff: str | None = None,
        changes: list[str] | None = None,
    ) -> TaskResult:
        return TaskResult(
            play=p.play.name,
            host=host.name,
            task=task,
            status=status,
            msg=msg,
            diff=diff,
            changes=changes or [],
            origin=origin,
            exception=exc,
        )

    def _record(
        self,
        p: _Prepared,
        host: Host,
        task: str,
        status: Status,
        msg: str,
        *,
        origin: str = "",
        exc: BaseException | None = None,
    ) -> None:
        self._emit(self._make(p, host, task, status, msg, origin=origin, exc=exc))

    def _emit(self, r: TaskResult) -> None:
        with self._lock:
            self.result.results.append(r)
            st = self.result.stats.setdefault(r.host, HostStats())
            st.add(r)
        # Events redacts every text of the result, the exception included.
        self.events.task_result(r)
