"""What every release strategy shares: deploy to a group, check it, move traffic, record.

A strategy is created in a playbook next to plays (``cdlib run`` runs both, in order) or
run from Python with :meth:`Strategy.run`. It holds the app's release lock for its whole
run, writes a history record after every step, and reports each step as a result line
(host ``release:<app>``) in the console, the JSON events and the :class:`RunResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cdlib.checks.suite import Suite, SuiteHost, SuiteReport, run_suite
from cdlib.engine.errors import CdlibError, Origin, PlaybookError
from cdlib.engine.origin import caller_origin
from cdlib.engine.results import RunResult, TaskResult
from cdlib.engine.task import Status
from cdlib.inventory.model import Inventory
from cdlib.release.gates import ABORT, Aborted, received
from cdlib.release.history import (
    ABORTED,
    FAILED,
    INTERRUPTED,
    ROLLED_BACK,
    History,
    Recorder,
    ReleaseRecord,
)
from cdlib.release.hooks import HookEvent, Hooks
from cdlib.release.interrupt import Interrupted
from cdlib.release.interrupt import check as check_interrupt
from cdlib.release.lock import ReleaseLock
from cdlib.release.routers import RouterSpec
from cdlib.traffic.base import Router, Target, TrafficError


class ReleaseFailed(CdlibError):
    """A release stopped; ``rolled_back`` says whether traffic was moved back, ``aborted``
    whether it stopped because it was aborted (``cdlib abort``, a rejected or timed-out
    gate) rather than because something failed."""

    def __init__(self, message: str, *, rolled_back: bool = False, aborted: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back
        self.aborted = aborted


class _NotPredictable(Exception):
    """Check mode stops a release here: what follows depends on a change not made."""


@dataclass(frozen=True)
class DeployTarget:
    """Where a strategy asks you to deploy: a router group, its hosts' pattern, a version."""

    group: str
    hosts: str
    version: str
    app: str


#: Builds the plays that install ``target.version`` on ``target.hosts``.
DeployFn = Callable[[DeployTarget], Any]


@dataclass
class ReleaseContext:
    """What the runner hands a strategy: inventory, modes and where results go."""

    inventory: Inventory
    check: bool = False
    diff: bool = False
    forks: int = 10
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    sinks: Sequence[Any] = ()
    connection_factory: Any = None
    result: RunResult = field(default_factory=RunResult)
    emit: Callable[[TaskResult], None] | None = None


@dataclass(kw_only=True)
class Strategy:
    """Options every strategy takes.

    Args:
        app: the application's name (lock, history and state are per app).
        version: the version being released.
        router: a :class:`~cdlib.release.routers.RouterSpec` (recorded, so
            ``cdlib rollback`` can rebuild it) or a ready :class:`~cdlib.traffic.Router`.
        deploy: ``deploy(target) -> Play | [Play, ...]`` installs ``target.version`` on
            ``target.hosts`` (an inventory pattern); ``None`` when hosts are already
            deployed.
        groups: router group -> inventory host pattern; default: same names.
        port: port the app serves on, for router targets; else host var ``port_var``.
        target_var: host var naming the router target (an EC2 instance id such as
            ``instance_id`` for instance target groups); default: the host's address.
        preview_checks: a smoke-check suite run against the new group's hosts directly,
            before any user traffic reaches them (template vars: the host's vars,
            ``address``).
        post_checks: a suite run after traffic moved, through the load balancer (it
            runs once, on the control machine, with ``release_group`` and
            ``release_version`` in its vars).
        hooks: callables at each stage.
        health_timeout: seconds to wait for the router to see the new group healthy.
        state_dir: where lock and history live (default ``$CDLIB_STATE_DIR``).
    """

    app: str
    version: str
    router: RouterSpec | Router | None
    deploy: DeployFn | None = None
    groups: Mapping[str, str] | None = None
    port: int | None = None
    port_var: str = "app_port"
    target_var: str | None = None
    preview_checks: Suite | None = None
    post_checks: Suite | None = None
    hooks: Hooks = field(default_factory=Hooks)
    health_timeout: float = 60.0
    state_dir: str | None = None
    name: str | None = None
    origin: Origin = field(default_factory=caller_origin, repr=False)

    kind = "strategy"
    #: False for strategies that move users by other means (flags).
    needs_router = True

    def __post_init__(self) -> None:
        if not isinstance(self.app, str) or not self.app:
            raise PlaybookError("a release needs an 'app' name", origin=self.origin)
        if not isinstance(self.version, str) or not self.version:
            raise PlaybookError("a release needs a 'version' string", origin=self.origin)
        if self.router is None and not self.needs_router:
            pass
        elif not isinstance(self.router, RouterSpec | Router):
            raise PlaybookError(
                f"'router' must be a RouterSpec (LocalHAProxySpec, HAProxySpec, ElbV2Spec) "
                f"or a Router, got {type(self.router).__name__}",
                origin=self.origin,
            )
        from cdlib.engine.play import _collector

        bucket = _collector.get()
        if bucket is not None:
            bucket.append(self)  # type: ignore[arg-type]

    # -- public ----------------------------------------------------------------
    @property
    def label(self) -> str:
        """Name shown in output."""
        return self.name or f"{self.kind} release of {self.app} {self.version}"

    def run(
        self,
        inventory: Inventory | str | None = None,
        *,
        check: bool = False,
        sinks: Sequence[Any] = (),
        extra_vars: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run this release alone (the same as a playbook holding only it)."""
        from cdlib.engine.runner import run

        return run([self], inventory, check=check, sinks=sinks, extra_vars=extra_vars)  # type: ignore[list-item]

    def validate(self, inv: Inventory, extra: Mapping[str, Any]) -> list[PlaybookError]:
        """Errors found before anything runs: unknown groups, bad deploy plays."""
        from cdlib.engine.playbook import Playbook
        from cdlib.engine.runner import prepare_plays
        from cdlib.engine.templating import Templar

        errors: list[PlaybookError] = []
        for group, pattern in self.group_patterns().items():
            if not inv.select(pattern):
                errors.append(
                    PlaybookError(
                        f"release {self.app}: group {group!r} (hosts {pattern!r}) matches no "
                        "inventory host",
                        origin=self.origin,
                    )
                )
                continue
            plays = self._deploy_plays(group, pattern)
            if plays:
                from pathlib import Path

                book = Playbook(Path(self.origin.file).resolve(), plays)
                try:
                    prepare_plays(
                        book,
                        inv,
                        pattern,
                        {**extra, **self._vars(group)},
                        Templar(book.search_path),
                    )
                except PlaybookError as exc:
                    errors.append(exc)
                except Exception as exc:
                    errors += list(getattr(exc, "errors", [PlaybookError(str(exc))]))
        return errors

    def group_patterns(self) -> dict[str, str]:
        """Router group -> inventory pattern."""
        if self.router is None:
            return {}
        names = self.router.groups if isinstance(self.router, Router) else self._spec_groups()
        return {g: (self.groups or {}).get(g, g) for g in names}

    def execute(self, ctx: ReleaseContext) -> None:
        """Run the release (called by the runner); failures become result lines."""
        import os

        rec = ReleaseRecord(
            self.app, self.version, self.kind, pid=os.getpid(), router=self._router_json()
        )
        run = Run(self, ctx, rec)
        try:
            with run.locked():
                try:
                    self._execute(run)
                except BaseException as exc:
                    if run.recorder is not None and run.rec.unfinished:
                        # An abort is recorded as such even when traffic was moved back
                        # (the reason says so): 'cdlib abort --help' promises it.
                        if isinstance(exc, Aborted) or getattr(exc, "aborted", False):
                            outcome = ABORTED
                        elif getattr(exc, "rolled_back", False):
                            outcome = ROLLED_BACK
                        else:
                            outcome = FAILED
                        if isinstance(exc, Interrupted):
                            outcome = INTERRUPTED
                        run.finish(outcome, str(exc))
                    run.hook("on_finish", rec.new_group, detail=run.rec.outcome)
                    raise
                run.hook("on_finish", rec.new_group, detail=run.rec.outcome)
        except _NotPredictable as exc:
            run.report("release", Status.SKIPPED, str(exc))
        except (CdlibError, Aborted, TrafficError) as exc:
            if not run.failure_reported:
                run.report("release", Status.FAILED, str(exc), exc=exc)
        except Exception as exc:
            if not run.failure_reported:
                run.report(
                    "release",
                    Status.FAILED,
                    f"internal error: {type(exc).__name__}: {exc}",
                    exc=exc,
                )

    def _execute(self, run: Run) -> None:
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------
    def _spec_groups(self) -> tuple[str, ...]:
        spec = self.router
        groups = getattr(spec, "groups", None)
        if groups:
            return tuple(groups)
        tgs = getattr(spec, "target_groups", None)
        if tgs:
            return tuple(tgs)
        return ("blue", "green")

    def _vars(self, group: str) -> dict[str, Any]:
        return {"release_app": self.app, "release_version": self.version, "release_group": group}

    def _deploy_plays(self, group: str, pattern: str) -> list[Any]:
        from cdlib.engine.play import Play, collect_plays

        if self.deploy is None:
            return []
        # Plays created by the deploy function must not leak into a playbook being loaded.
        with collect_plays():
            out = self.deploy(DeployTarget(group, pattern, self.version, self.app))
        plays = [out] if isinstance(out, Play) else list(out or [])
        for p in plays:
            if not isinstance(p, Play):
                raise PlaybookError(
                    f"release {self.app}: deploy() must return Play objects, got "
                    f"{type(p).__name__}",
                    origin=self.origin,
                )
        return plays

    def _router(self, run: Run) -> Router:
        if self.router is None:
            raise ReleaseFailed(f"release {self.app}: this strategy needs a router")
        if isinstance(self.router, Router):
            return self.router
        need = self.router.start_needed()
        if need:
            # Starting is a change: only a real run makes it (check mode reports it).
            with run.step(need, changes=True) as st:
                if run.ctx.check:
                    st.detail = f"would {need}"
                else:
                    self.router.start()
            if run.ctx.check:
                raise _NotPredictable(
                    "the rest of the release cannot be predicted until the router runs"
                )
        return self.router.build()

    def _router_json(self) -> dict[str, Any]:
        return self.router.to_json() if isinstance(self.router, RouterSpec) else {}

    def _targets(self, inv: Inventory, pattern: str) -> list[Target]:
        out = []
        for h in inv.select(pattern):
            port = self.port if self.port is not None else h.var(self.port_var)
            if port is None:
                raise ReleaseFailed(
                    f"host {h.name}: no port for the router (set port= on the release or "
                    f"host var {self.port_var!r})"
                )
            where = h.address if self.target_var is None else h.var(self.target_var)
            if where is None:
                raise ReleaseFailed(f"host {h.name}: host var {self.target_var!r} is not set")
            out.append(Target(str(where), int(port)))
        return out


@dataclass
class StepNote:
    """What a step reports: its detail, and whether it changed something."""

    detail: str = ""
    changed: bool | None = None


class Run:
    """One execution of a strategy: lock, record, step results, hooks, signals."""

    def __init__(self, strategy: Strategy, ctx: ReleaseContext, rec: ReleaseRecord) -> None:
        self.s = strategy
        self.ctx = ctx
        self.rec = rec
        self.recorder: Recorder | None = None
        self.play_name = f"release {strategy.app} {strategy.version} ({strategy.kind})"
        self.failure_reported = False

    # -- lifecycle -------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the app's release lock and record the release (not in check mode)."""
        if self.ctx.check:
            yield
            return
        lock = ReleaseLock(self.s.app, self.rec.id, state_dir=self.s.state_dir)
        lock.acquire()
        try:
            self.recorder = Recorder(History(self.s.app, state_dir=self.s.state_dir), self.rec)
            yield
        finally:
            lock.release()

    @contextmanager
    def step(self, name: str, *, changes: bool = False) -> Iterator[StepNote]:
        """Time a step, record it, and report it as a result line."""
        t0 = time.monotonic()
        note = StepNote()
        rec = self.recorder.step(name) if self.recorder else None
        try:
            yield note
        except BaseException as exc:
            if self.recorder and rec:
                self.recorder.end_step(rec, FAILED, str(exc))
            self.report(name, Status.FAILED, str(exc), duration=time.monotonic() - t0, exc=exc)
            self.failure_reported = True
            raise
        if self.recorder and rec:
            self.recorder.end_step(rec, "succeeded", note.detail)
        changed = changes if note.changed is None else note.changed
        self.report(
            name,
            Status.CHANGED if changed else Status.OK,
            note.detail,
            duration=time.monotonic() - t0,
        )

    def report(
        self,
        task: str,
        status: Status,
        msg: str,
        *,
        duration: float = 0.0,
        exc: BaseException | None = None,
        changes: list[str] | None = None,
    ) -> None:
        """Emit one result line for the release."""
        r = TaskResult(
            play=self.play_name,
            host=f"release:{self.s.app}",
            task=task,
            status=status,
            msg=msg,
            origin=str(self.s.origin),
            duration=duration,
            exception=exc,
            changes=changes or ([msg] if status is Status.CHANGED and msg else []),
        )
        if self.ctx.emit is not None:
            self.ctx.emit(r)

    def hook(
        self,
        stage: str,
        group: str | None,
        weights: Mapping[str, int] | None = None,
        detail: str = "",
    ) -> None:
        """Fire a hook (not in check mode)."""
        if self.ctx.check:
            return
        self.s.hooks.fire(
            HookEvent(
                stage, self.s.app, self.s.version, group, dict(weights or {}), self.rec.id, detail
            )
        )

    def aborted(self) -> bool:
        """Whether ``cdlib abort`` was sent to this release."""
        return (
            not self.ctx.check
            and received(self.s.app, self.rec.id, state_dir=self.s.state_dir) == ABORT
        )

    def sleep(self, seconds: float) -> None:
        """Wait, but stop early: :class:`Aborted` on ``cdlib abort``, ``Interrupted``
        when ``cdlib rollback`` interrupted the release."""
        end = time.monotonic() + seconds
        while True:
            if self.aborted():
                raise Aborted("aborted by 'cdlib abort'")
            if not self.ctx.check:
                check_interrupt(self.s.app, self.rec.id, state_dir=self.s.state_dir)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.25, left))

    def weights(self, weights: Mapping[str, int]) -> None:
        """Record where traffic stands."""
        if self.recorder:
            self.recorder.weights(dict(weights))

    def finish(self, outcome: str, reason: str = "") -> None:
        """Record the end of the release."""
        if self.recorder:
            self.recorder.finish(outcome, reason)

    # -- shared steps ------------------------------------------------------------
    def deploy(self, group: str, limit: str | None = None) -> None:
        """Install the version on the group's hosts (plays from ``deploy``)."""
        pattern = self.s.group_patterns()[group]
        where = pattern if limit is None else f"{pattern}:&{limit}"
        plays = self.s._deploy_plays(group, pattern)
        if not plays:
            return
        from cdlib.engine.runner import run

        self.hook("before_install", group)
        with self.step(f"deploy {self.s.version} to {group}", changes=True) as st:
            sub = run(
                plays,
                self.ctx.inventory,
                check=self.ctx.check,
                diff=self.ctx.diff,
                limit=where,
                extra_vars={**self.ctx.extra_vars, **self.s._vars(group)},
                forks=self.ctx.forks,
                sinks=[_NoEnd(s) for s in self.ctx.sinks],
                connection_factory=self.ctx.connection_factory,
            )
            merge_results(self.ctx.result, sub)
            if not sub.ok:
                bad = sorted(set(sub.failed_hosts) | set(sub.unreachable_hosts))
                raise ReleaseFailed(f"deploy failed on {', '.join(bad)}; traffic unchanged")
            st.detail = f"{len(sub.stats)} host(s), {len(sub.changed())} change(s)"
            st.changed = bool(sub.changed())
        self.hook("after_install", group)

    def ensure_targets(self, router: Router, group: str) -> None:
        """Register the group's hosts in the router and wait until they are healthy."""
        pattern = self.s.group_patterns()[group]
        want = set(self.s._targets(self.ctx.inventory, pattern))
        have = set(router.targets(group))
        diff = bool(want - have or have - want)
        with self.step(f"router targets of {group}", changes=diff) as st:
            if self.ctx.check:
                st.detail = f"would register {len(want - have)}, remove {len(have - want)}"
                return
            if want - have:
                router.register(group, sorted(want - have))
            if have - want:
                router.deregister(group, sorted(have - want))
            report = router.wait_healthy(group, timeout=self.s.health_timeout)
            if not report.healthy:
                raise ReleaseFailed(f"{report.describe()}; traffic unchanged")
            st.detail = f"{len(want)} target(s) healthy"

    def checks(self, suite: Suite | None, title: str, hosts: list[SuiteHost]) -> SuiteReport | None:
        """Run a smoke-check suite; raise :class:`ReleaseFailed` when it fails."""
        if suite is None:
            return None
        with self.step(title) as st:
            if self.ctx.check:
                st.detail = f"would run suite {suite.name} on {len(hosts)} host(s)"
                return None
            report = run_suite(suite, hosts, forks=self.ctx.forks)
            if not report.ok:
                raise ReleaseFailed(f"{title} failed:\n{report.render()}")
            st.detail = f"suite {suite.name} passed on {len(hosts)} target(s)"
            return report

    def preview_hosts(self, group: str) -> list[SuiteHost]:
        """The group's hosts as suite targets (checked directly, not through the router)."""
        pattern = self.s.group_patterns()[group]
        out = []
        for h in self.ctx.inventory.select(pattern):
            conn = None
            if self.ctx.connection_factory is not None:
                conn = self.ctx.connection_factory(h)
            else:
                from cdlib.connections.factory import connection_for

                conn = connection_for(h)
            out.append(SuiteHost(h.name, conn, {**h.vars, **self.s._vars(group)}))
        return out

    def router_host(self, group: str) -> list[SuiteHost]:
        """One pseudo-host for checks through the load balancer."""
        return [SuiteHost("router", None, {**self.ctx.extra_vars, **self.s._vars(group)})]


class _NoEnd:
    """Forwards a sink's events except the end of a nested run."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        self.sink.play_start(play, hosts, check)

    def task_result(self, result: TaskResult) -> None:
        self.sink.task_result(result)

    def run_end(self, result: RunResult) -> None:
        return None


def merge_results(into: RunResult, sub: RunResult) -> None:
    """Add a nested run's results and counts to ``into``."""
    into.results.extend(sub.results)
    for host, st in sub.stats.items():
        mine = into.stats.setdefault(host, type(st)())
        for k, v in st.as_dict().items():
            setattr(mine, k, getattr(mine, k) + v)
