"""What every release strategy shares: its options, validation and the way it runs.

A strategy is created in a playbook next to plays (``cdlib run`` runs both, in order) or
run from Python with :meth:`Strategy.run`. To the engine it is one more
:class:`~cdlib.engine.contract.Runnable` item. It holds the app's release lock for its
whole run, writes a history record after every step (:mod:`cdlib.release.journal`),
and reports each step as a result line (host ``release:<app>``) in the console, the
JSON events and the :class:`RunResult`. The steps strategies share (deploy a group,
register targets, run checks) are in :mod:`cdlib.release.steps`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdlib.checks.suite import Suite
from cdlib.engine.contract import RunContext, Scope
from cdlib.engine.errors import CdlibError, Origin, PlaybookError
from cdlib.engine.events import EventSink
from cdlib.engine.origin import caller_origin
from cdlib.engine.play import Play, collect_plays, register
from cdlib.engine.prepare import plays_path
from cdlib.engine.results import RunResult
from cdlib.engine.runner import run as run_playbook
from cdlib.engine.task import Status
from cdlib.engine.templating import is_template
from cdlib.inventory.model import Inventory
from cdlib.release.alarms import bad_alarm_names
from cdlib.release.failed import ReleaseFailed
from cdlib.release.gates import Aborted
from cdlib.release.history import ABORTED, FAILED, INTERRUPTED, ROLLED_BACK, ReleaseRecord
from cdlib.release.hooks import Hooks
from cdlib.release.interrupt import Interrupted
from cdlib.release.journal import StepNote
from cdlib.release.options import option_vars, render_options, secrets_of
from cdlib.release.routers import RouterSpec
from cdlib.release.state import app_name_ok, store_for
from cdlib.release.steps import ReleaseRun, Run
from cdlib.state import StateError
from cdlib.tasks._local import file_sha256
from cdlib.traffic.base import Router, RouterInputError, Target, TrafficError, check_http_name

__all__ = [
    "DeployFn",
    "DeployTarget",
    "ReleaseFailed",
    "ReleaseRun",
    "Run",
    "StepNote",
    "Strategy",
]


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
        preview_header: route requests carrying this header with the new group's name as
            value (``X-Release-Preview: green``) to the new group through the load balancer
            before any user traffic, and run ``preview_checks`` that way: once, from the
            control machine, each HTTP check sending the header. The route is removed when
            the release ends and by ``cdlib rollback``. ``None`` (the default): preview
            checks go to the hosts directly.
        post_checks: a suite run after traffic moved, through the load balancer (it
            runs once, on the control machine, with ``release_group`` and
            ``release_version`` in its vars).
        hooks: callables at each stage.
        health_timeout: seconds to wait for the router to see the new group healthy.
        state: where lock and history live: a directory or ``s3://bucket/prefix``
            (default ``$CDLIB_STATE`` / ``cdlib run --state``, else the local directory).
        state_dir: the same as ``state`` (its older name; give one of the two).
        vars: variables for the options' templates, as a play's vars (``-e`` wins).
        environment: the environment released to (``"{{ env }}"``), recorded and
            filtered on by ``cdlib history --env``.
        build: the build file released (relative to the playbook's directory); its
            sha256 is recorded. Default: the build of the deploy plays' ``install`` task.
        metadata: free-form labels recorded with the release (``cdlib run --meta``
            adds to them and wins).
        require_released_in: an environment the same build (same sha256) must have been
            released to successfully first; otherwise the release stops before deploying.
        alarms: CloudWatch alarm names watched from the start of the release until the
            bake time ends; one in ALARM rolls back (:mod:`cdlib.release.alarms`). Each
            must exist (checked before anything runs, exit 4).
        bake_time: seconds to wait after traffic moved, watching ``alarms``, before the
            release counts as succeeded.
        alarm_interval: least seconds between two reads of the alarms during pauses.

    Every string option (and every string of a router spec, of ``groups`` and of
    ``metadata``) may be a template, rendered per run from the inventory's ``all``
    vars, ``vars``, extra vars and ``lookup('env', NAME)`` (:mod:`cdlib.release.options`).
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
    preview_header: str | None = None
    post_checks: Suite | None = None
    hooks: Hooks = field(default_factory=Hooks)
    health_timeout: float = 60.0
    state_dir: str | None = None
    state: str | None = None
    name: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    environment: str | None = None
    build: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    require_released_in: str | None = None
    alarms: Sequence[str] = ()
    bake_time: float = 0.0
    alarm_interval: float = 10.0
    origin: Origin = field(default_factory=caller_origin, repr=False)

    kind = "strategy"
    #: False for strategies that move users by other means (flags).
    needs_router = True
    #: What ``--limit`` means: ``group`` (the group traffic switches to must be wholly
    #: inside it), ``hosts`` (only the limited hosts are updated) or ``none`` (refused).
    limit_mode = "group"

    def __post_init__(self) -> None:
        if not isinstance(self.app, str) or not self.app:
            raise PlaybookError("a release needs an 'app' name", origin=self.origin)
        if not isinstance(self.version, str) or not self.version:
            raise PlaybookError("a release needs a 'version' string", origin=self.origin)
        if self.router is None and not self.needs_router:
            pass
        elif not isinstance(self.router, RouterSpec | Router):
            from cdlib.release.routers import router_kinds

            kinds = ", ".join(sorted(router_kinds()))
            raise PlaybookError(
                f"'router' must be a RouterSpec (kinds: {kinds}) "
                f"or a Router, got {type(self.router).__name__}",
                origin=self.origin,
            )
        register(self)

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
        sinks: Sequence[EventSink] = (),
        extra_vars: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run this release alone (the same as a playbook holding only it)."""
        return run_playbook([self], inventory, check=check, sinks=sinks, extra_vars=extra_vars)

    def validate(self, scope: Scope[Play]) -> list[PlaybookError]:
        """Errors found before anything runs: options that do not render, unknown groups,
        a ``--limit`` the strategy cannot honour, a missing build, bad deploy plays."""
        s, errors = self.for_run(scope.inventory, scope.extra_vars, scope.metadata)
        if errors:
            return errors
        return s._validate(scope)

    def for_run(
        self,
        inventory: Inventory,
        extra_vars: Mapping[str, Any],
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[Strategy, list[PlaybookError]]:
        """A copy of this strategy with its options rendered for one run, and the errors
        (this object keeps its templates)."""
        secrets = secrets_of(inventory, extra_vars, self.vars)
        variables = option_vars(inventory, self.vars, extra_vars)
        s, errors = render_options(self, variables, secrets, metadata or {})
        if s.state:
            if s.state_dir and s.state_dir != s.state:
                errors.append(
                    PlaybookError(
                        f"release {self.app}: give state= or state_dir=, not both",
                        origin=self.origin,
                    )
                )
            # Everything below reads ``state_dir``: the one location of this run.
            s.state_dir = s.state
        if not errors:
            errors += s._check_options()
        return s, errors

    def _check_options(self) -> list[PlaybookError]:
        bad = []
        if not app_name_ok(self.app):
            bad.append(f"app name {self.app!r} is invalid: use letters, digits, '.', '_', '-'")
        if not self.version.strip() or any(c.isspace() for c in self.version):
            bad.append(f"version {self.version!r} is empty or holds white space")
        if self.require_released_in is not None and self.require_released_in == self.environment:
            bad.append(
                f"require_released_in names this release's own environment {self.environment!r}"
            )
        try:
            store_for(self.state_dir)
        except StateError as exc:
            bad.append(str(exc))
        if self.preview_header is not None:
            try:
                check_http_name("preview_header", self.preview_header)
            except RouterInputError as exc:
                bad.append(str(exc))
        if isinstance(self.alarms, str):
            bad.append("alarms must be a list of alarm names, not one string")
        else:
            bad += bad_alarm_names(list(self.alarms))
        if not isinstance(self.bake_time, int | float) or self.bake_time < 0:
            bad.append(f"bake_time must be a number of seconds >= 0, got {self.bake_time!r}")
        if not isinstance(self.alarm_interval, int | float) or self.alarm_interval <= 0:
            bad.append(f"alarm_interval must be a positive number, got {self.alarm_interval!r}")
        return [PlaybookError(f"release {self.app}: {b}", origin=self.origin) for b in bad]

    def _validate(self, scope: Scope[Play]) -> list[PlaybookError]:
        inv = scope.inventory
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
                try:
                    errors += scope.check_plays(plays, limit=pattern, extra_vars=self._vars(group))
                except Exception as exc:
                    errors.append(PlaybookError(str(exc), origin=self.origin))
        if errors:
            return errors
        errors += self._check_limit(inv, scope.limit)
        errors += self._check_alarms_exist()
        try:
            build = self.build_path()
        except PlaybookError as exc:
            return [*errors, exc]
        if build is not None and not build.is_file():
            errors.append(
                PlaybookError(
                    f"release {self.app}: build {str(build)!r} not found", origin=self.origin
                )
            )
        if self.require_released_in is not None and build is None:
            errors.append(
                PlaybookError(
                    f"release {self.app}: require_released_in={self.require_released_in!r} "
                    "compares builds by sha256: set build= (or deploy with a release task)",
                    origin=self.origin,
                )
            )
        return errors

    def _check_alarms_exist(self) -> list[PlaybookError]:
        """Every alarm name must name a CloudWatch alarm (one DescribeAlarms call)."""
        if not self.alarms:
            return []
        from cdlib.release.alarms import cloudwatch_for, missing

        try:
            absent = missing(cloudwatch_for(self.router), list(self.alarms))
        except Exception as exc:
            why = f"cannot read CloudWatch alarms {', '.join(self.alarms)}: {exc}"
            return [PlaybookError(f"release {self.app}: {why}", origin=self.origin)]
        return [
            PlaybookError(
                f"release {self.app}: CloudWatch alarm {name!r} does not exist "
                "(DescribeAlarms found no such alarm); nothing was changed",
                origin=self.origin,
            )
            for name in absent
        ]

    def limited_hosts(self, inv: Inventory, group: str, limit: str | None) -> list[str] | None:
        """The group's hosts inside ``limit`` (``None`` without a limit)."""
        if not limit:
            return None
        inside = {h.name for h in inv.select("all", limit)}
        return [h.name for h in inv.select(self.group_patterns()[group]) if h.name in inside]

    def _check_limit(self, inv: Inventory, limit: str | None) -> list[PlaybookError]:
        if not limit:
            return []
        groups = self.group_patterns()
        if self.limit_mode == "none" or not groups:
            why = f"a {self.kind} release deploys no hosts, so --limit has no meaning for it"
        else:
            parts = {
                g: (self.limited_hosts(inv, g, limit) or [], inv.select(p))
                for g, p in groups.items()
            }
            if self.limit_mode == "hosts":
                mine = self._updated_groups()
                if any(parts[g][0] for g in mine):
                    return []
                why = f"--limit {limit!r} selects no host of group(s) {', '.join(mine)}"
            elif any(len(sel) == len(every) for sel, every in parts.values()):
                return []
            else:
                cover = ", ".join(
                    f"{g}: {len(sel)} of {len(every)} host(s)" for g, (sel, every) in parts.items()
                )
                why = (
                    f"--limit {limit!r} leaves every group partly deployed ({cover}), and a "
                    f"{self.kind} release moves traffic to the whole group it deploys; widen "
                    "--limit to a whole group or drop it"
                )
        return [PlaybookError(f"release {self.app}: {why}", origin=self.origin)]

    def _updated_groups(self) -> list[str]:
        """The router groups whose hosts this strategy deploys."""
        return list(self.group_patterns())

    def build_path(self) -> Path | None:
        """The build file released: ``build``, else the one of the deploy plays'
        ``install`` task (``None`` when there is none)."""
        base = plays_path([self]).parent
        if self.build is not None:
            p = Path(self.build).expanduser()
            return p if p.is_absolute() else base / p
        from cdlib.tasks.install import Install

        found: set[Path] = set()
        for group, pattern in self.group_patterns().items():
            for play in self._deploy_plays(group, pattern):
                where = plays_path([play]).parent
                for t in play.tasks:
                    if isinstance(t, Install) and not is_template(t.build):
                        p = Path(t.build).expanduser()
                        found.add(p if p.is_absolute() else where / p)
        if len(found) > 1:
            raise PlaybookError(
                f"release {self.app}: the deploy plays install several builds "
                f"({', '.join(sorted(map(str, found)))}); name the one released with build=",
                origin=self.origin,
            )
        return next(iter(found), None)

    def group_patterns(self) -> dict[str, str]:
        """Router group -> inventory pattern."""
        if self.router is None:
            return {}
        names = self.router.groups if isinstance(self.router, Router) else self._spec_groups()
        return {g: (self.groups or {}).get(g, g) for g in names}

    def execute(self, ctx: RunContext[Play]) -> None:
        """Run the release (called by the engine); failures become result lines."""
        s, errors = self.for_run(ctx.inventory, ctx.extra_vars, ctx.metadata)
        if errors:
            # Validation renders the same options: only a changed environment gets here.
            ctx.start(f"release {self.app} ({self.kind})", [f"release:{self.app}"])
            ReleaseRun(self, ctx, ReleaseRecord(self.app, self.version, self.kind)).report(
                "release", Status.FAILED, "; ".join(str(e) for e in errors)
            )
            return
        s._run(ctx)

    def _run(self, ctx: RunContext[Play]) -> None:
        ctx.start(f"release {self.app} {self.version} ({self.kind})", [f"release:{self.app}"])
        rec = ReleaseRecord(
            self.app,
            self.version,
            self.kind,
            pid=os.getpid(),
            router=self._router_json(),
            environment=self.environment,
            metadata=dict(self.metadata),
        )
        run = ReleaseRun(self, ctx, rec)
        try:
            build = self.build_path()
            if build is not None:
                rec.build = self.build if self.build is not None else str(build)
                try:
                    rec.build_sha256 = file_sha256(build)[0]
                except OSError as exc:
                    raise ReleaseFailed(
                        f"cannot read build {str(build)!r}: {exc.strerror}"
                    ) from None
            with run.locked():
                try:
                    run.promotion_check()
                    run.start_alarms()
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

    def _execute(self, run: ReleaseRun) -> None:
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
        # What deploy plays and checks see about the release.
        return {"release_app": self.app, "release_version": self.version, "release_group": group}

    def _deploy_plays(self, group: str, pattern: str) -> list[Play]:
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

    def _router(self, run: ReleaseRun) -> Router:
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
