"""Immutable blue/green and canary over Auto Scaling groups behind an ELBv2 listener.

Each release group (``blue``, ``green``) is an Auto Scaling group feeding one target
group. A release never changes a running instance: the idle group gets the new launch
template version and fresh instances, is scaled to the live group's size, waits until
they serve, is checked through the test listener, then takes the traffic (at once, or
in weighted steps with analysis). After the bake time the old group is scaled in to
zero (``keep_old="scale_in"``) or kept warm (``keep_old="warm"``) for a fast rollback;
``cdlib rollback`` scales it back first when needed (:class:`AutoScalingSpec`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cdlib.aws.compute import (
    AutoScalingGroupState,
    ComputeError,
    ComputeInputError,
    LaunchTemplateSpec,
)
from cdlib.checks.suite import SuiteHost
from cdlib.engine.contract import Scope
from cdlib.engine.errors import PlaybookError
from cdlib.engine.play import Play
from cdlib.engine.task import Status
from cdlib.inventory.model import Inventory
from cdlib.release.asg_groups import Capacity, Groups, aws_errors
from cdlib.release.bluegreen import BlueGreen, live_and_idle
from cdlib.release.canary import Canary
from cdlib.release.gates import Aborted
from cdlib.release.history import SUCCEEDED
from cdlib.release.interrupt import Interrupted
from cdlib.release.options import option_vars
from cdlib.release.routers import AutoScalingSpec
from cdlib.release.strategy import ReleaseFailed, ReleaseRun, Strategy
from cdlib.traffic.base import Router

KeepOld = Literal["scale_in", "warm"]
#: Builds the launch template spec from the variables options are rendered with.
TemplateFn = Callable[[Mapping[str, Any]], LaunchTemplateSpec]


@dataclass
class _Plan:
    """What the first step read: groups, sizes, the template."""

    live: str | None
    idle: str
    template: str
    capacity: Capacity
    live_version: str | None


@dataclass(kw_only=True)
class _Immutable(Strategy):
    """Options and steps of the immutable strategies (see :class:`AsgBlueGreen`)."""

    launch_template: (
        LaunchTemplateSpec | Callable[[Mapping[str, Any]], LaunchTemplateSpec] | None
    ) = None
    launch_template_version: int | None = None
    size: int | None = None
    keep_old: KeepOld = "scale_in"
    instance_timeout: float = 600.0
    poll_interval: float = 5.0

    limit_mode = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.router, AutoScalingSpec):
            raise PlaybookError(
                f"{self.kind}: 'router' must be an AutoScalingSpec, got "
                f"{type(self.router).__name__}",
                origin=self.origin,
            )

    def for_run(
        self,
        inventory: Inventory,
        extra_vars: Mapping[str, Any],
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[Strategy, list[PlaybookError]]:
        """As for every strategy; a ``launch_template`` callable is called here with the
        variables the options are rendered with (as the AWS tasks call theirs)."""
        s, errors = super().for_run(inventory, extra_vars, metadata)
        build = getattr(s, "launch_template", None)
        if errors or build is None or isinstance(build, LaunchTemplateSpec):
            return s, errors
        variables = option_vars(inventory, self.vars, extra_vars)
        try:
            s.launch_template = build(variables)  # type: ignore[attr-defined]
        except (ComputeInputError, KeyError, TypeError) as exc:
            why = f"undefined variable {exc}" if isinstance(exc, KeyError) else str(exc)
            errors.append(
                PlaybookError(f"release {self.app}: launch_template: {why}", origin=self.origin)
            )
        return s, errors

    @property
    def template_spec(self) -> LaunchTemplateSpec | None:
        """The launch template spec, once built for a run."""
        lt = self.launch_template
        return lt if isinstance(lt, LaunchTemplateSpec) else None

    @property
    def spec(self) -> AutoScalingSpec:
        """The router spec (an :class:`AutoScalingSpec`)."""
        assert isinstance(self.router, AutoScalingSpec)
        return self.router

    def group_patterns(self) -> dict[str, str]:
        """None: the groups are Auto Scaling groups, not inventory hosts."""
        return {}

    def _check_options(self) -> list[PlaybookError]:
        bad = []
        spec = self.spec
        if (self.launch_template is None) == (self.launch_template_version is None):
            bad.append("give exactly one of launch_template (a spec) or launch_template_version")
        if self.keep_old not in ("scale_in", "warm"):
            bad.append(f"keep_old must be 'scale_in' or 'warm', got {self.keep_old!r}")
        if self.deploy is not None:
            bad.append("an immutable release deploys no hosts: the launch template is the build")
        if len(spec.target_groups) != 2:
            bad.append(f"needs exactly two target groups, got {sorted(spec.target_groups)}")
        if set(spec.auto_scaling_groups) != set(spec.target_groups):
            bad.append(
                f"auto_scaling_groups {sorted(spec.auto_scaling_groups)} must name the same "
                f"groups as target_groups {sorted(spec.target_groups)}"
            )
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            bad.append(f"size must be a positive number of instances, got {self.size!r}")
        if getattr(self, "analysis_checks", None) is not None:
            bad.append("analysis_checks run on inventory hosts; use alarms or thresholds")
        if self.instance_timeout <= 0 or self.poll_interval <= 0:
            bad.append("instance_timeout and poll_interval must be positive")
        mine = [PlaybookError(f"release {self.app}: {b}", origin=self.origin) for b in bad]
        return super()._check_options() + mine

    # -- validation: every AWS resource named exists (reads only) ---------------------
    def _validate(self, scope: Scope[Play]) -> list[PlaybookError]:
        errors = super()._validate(scope)
        try:
            self._preflight()
        except (ComputeError, ReleaseFailed) as exc:
            errors.append(
                PlaybookError(f"release {self.app}: {exc}; nothing was changed", origin=self.origin)
            )
        return errors

    def _preflight(self) -> None:
        from cdlib.aws.provision import aws_call, ensure_launch_template

        spec = self.spec
        api = spec.groups_api()
        for group, arn in spec.target_groups.items():
            with aws_errors():
                try:
                    aws_call(
                        f"target group {arn}",
                        api.elbv2.describe_target_groups,
                        TargetGroupArns=[arn],
                    )
                except ComputeError as exc:
                    if "NotFound" in str(exc):
                        raise ReleaseFailed(f"target group {arn} ({group}) not found") from None
                    raise
        for arn in filter(None, (spec.listener_arn, spec.test_listener_arn)):
            with aws_errors():
                try:
                    aws_call(f"listener {arn}", api.elbv2.describe_listeners, ListenerArns=[arn])
                except ComputeError as exc:
                    if "NotFound" in str(exc):
                        raise ReleaseFailed(f"listener {arn} not found") from None
                    raise
        templates = set()
        for group in spec.auto_scaling_groups:
            st = api.state(group)
            templates.add(st.launch_template)
            for subnet in sorted(st.subnets):
                with aws_errors():
                    try:
                        aws_call(
                            f"Auto Scaling group {api.name(group)}",
                            api.ec2.describe_subnets,
                            SubnetIds=[subnet],
                        )
                    except ComputeError as exc:
                        if "NotFound" in str(exc):
                            raise ReleaseFailed(
                                f"Auto Scaling group {api.name(group)}: subnet {subnet} not found"
                            ) from None
                        raise
        if len(templates) != 1:
            raise ReleaseFailed(
                f"Auto Scaling groups {', '.join(spec.auto_scaling_groups.values())} launch "
                f"from different launch templates ({', '.join(sorted(templates))})"
            )
        template = templates.pop()
        lt = self.template_spec
        if lt is not None:
            if lt.name != template:
                raise ReleaseFailed(
                    f"launch_template names {lt.name!r}, but the groups launch from {template!r}"
                )
            with aws_errors():
                ensure_launch_template(api.ec2, lt, dry_run=True)
        elif not api.template_version_exists(template, str(self.launch_template_version)):
            raise ReleaseFailed(
                f"launch template {template} has no version {self.launch_template_version}"
            )

    # -- steps ----------------------------------------------------------------------
    def _read(self, run: ReleaseRun, router: Router, api: Groups) -> _Plan:
        groups = list(self.spec.target_groups)
        with run.step("read router and Auto Scaling groups") as st:
            state = router.state()
            live, idle = live_and_idle(state, groups)
            live_st = api.state(live) if live else None
            idle_st = api.state(idle)
            run.rec.previous_group = live
            run.rec.new_group = idle
            run.rec.previous_version = router.tagged_release(live) if live else None
            run.weights(state.weights)
            capacity = self._capacity(live_st, idle_st)
            versions = {idle: idle_st.launch_template_version}
            if live_st is not None and live is not None:
                versions[live] = live_st.launch_template_version
                # Recorded for 'cdlib rollback': the sizes the old group must serve at.
                run.rec.router["capacity"] = {
                    live: Capacity(live_st.min_size, live_st.max_size, live_st.desired).to_json()
                }
            run.rec.router["launch_template"] = idle_st.launch_template
            run.rec.router["launch_template_versions"] = versions
            st.detail = (
                f"live: {live} ({api.describe(live)}); idle: {idle}"
                if live and live_st
                else f"no live group yet; first release goes to {idle}"
            )
        return _Plan(
            live,
            idle,
            idle_st.launch_template,
            capacity,
            live_st.launch_template_version if live_st else None,
        )

    def _capacity(
        self, live: AutoScalingGroupState | None, idle: AutoScalingGroupState
    ) -> Capacity:
        if self.size is not None:
            base = live or idle
            return Capacity(min(base.min_size, self.size), max(base.max_size, self.size), self.size)
        if live is None:
            raise ReleaseFailed(
                "no group is live yet: give size= (instances) for the first release"
            )
        return Capacity(live.min_size, max(live.max_size, idle.max_size), live.desired)

    def _template_version(self, run: ReleaseRun, api: Groups, template: str) -> str:
        """Create the launch template version (or take the given one); its number."""
        from cdlib.aws.provision import ensure_launch_template

        lt = self.template_spec
        if lt is None:
            return str(self.launch_template_version)
        with run.step(f"launch template {template}", changes=True) as st:
            with aws_errors():
                done = ensure_launch_template(api.ec2, lt, dry_run=run.ctx.check)
            st.changed = bool(done.changes)
            st.detail = "; ".join(done.changes) or f"version {done.version} holds the spec"
        return str(done.version)

    def _bring_up(self, run: ReleaseRun, api: Groups, plan: _Plan, version: str) -> None:
        idle, want = plan.idle, plan.capacity
        name = api.name(idle)
        run.rec.router.setdefault("launch_template_versions", {})[idle] = version
        with run.step(
            f"{name}: launch template {plan.template} v{version}, {want.desired} instance(s)",
            changes=True,
        ) as st:
            if run.ctx.check:
                st.detail = f"would scale {name} to {want.desired} instance(s) of v{version}"
                return
            current = api.state(idle)
            if current.instances and current.launch_template_version != version:
                # Immutable: instances of another version never serve this release.
                api.resize(idle, Capacity(0, current.max_size, 0))
                api.wait_empty(idle, timeout=self.instance_timeout, poll=self.poll_interval)
            api.resize(
                idle,
                Capacity(want.min_size, max(want.max_size, current.max_size), want.desired),
                version=version,
                template=plan.template,
            )
            ready = api.wait(idle, timeout=self.instance_timeout, poll=self.poll_interval)
            st.detail = ready.report(name)

    def _preview(self, run: ReleaseRun, router: Router, api: Groups, idle: str) -> None:
        """Point the test listener at the idle group; its targets must be healthy; then
        the preview suite runs with ``test_url`` (the test listener's URL)."""
        spec = self.spec
        extra: dict[str, Any] = {}
        if spec.test_listener_arn:
            from cdlib.traffic.elbv2 import ElbV2Router

            test = ElbV2Router(
                api.elbv2,
                target_groups=spec.target_groups,
                listener_arn=spec.test_listener_arn,
            )
            with run.step(f"test listener -> {idle}", changes=True) as st:
                if run.ctx.check:
                    st.detail = f"would forward the test listener to {idle}"
                else:
                    before = test.state().live
                    test.switch(idle)
                    st.changed = before != idle
                    report = test.wait_healthy(idle, timeout=self.health_timeout)
                    if not report.healthy:
                        raise ReleaseFailed(f"{report.describe()}; traffic unchanged")
                    st.detail = f"{len(report.targets)} target(s) healthy behind it"
                extra = _listener_vars(api, spec.test_listener_arn)
        if self.preview_checks is not None:
            host = run.router_host(idle)[0]
            hosts = [SuiteHost("test-listener", None, {**host.vars, **extra})]
            title = f"preview checks on {idle}" + (
                " through the test listener" if spec.test_listener_arn else ""
            )
            run.checks(self.preview_checks, title, hosts)

    def _retire(self, run: ReleaseRun, api: Groups, old: str | None) -> None:
        """After the bake time: scale the old group in, or keep it warm."""
        if old is None:
            return
        name = api.name(old)
        if self.keep_old == "warm":
            run.report(f"keep {name} warm", Status.OK, f"{name} keeps its instances for a rollback")
            return
        with run.step(f"scale in {name}", changes=True) as st:
            if run.ctx.check:
                st.detail = f"would scale {name} to 0"
                return
            current = api.state(old)
            api.resize(old, Capacity(0, current.max_size, 0))
            api.forget_departed(old)
            st.detail = f"{name}: 0 instances (was {current.desired}); rollback scales it back"

    def _front(self, run: ReleaseRun) -> tuple[Router, Groups, _Plan, str] | None:
        """Read, make the version, bring the idle group up, preview. None: already live."""
        router = self._router(run)
        api = self.spec.groups_api()
        plan = self._read(run, router, api)
        version = self._template_version(run, api, plan.template)
        if (
            plan.live is not None
            and plan.live_version == version
            and run.rec.previous_version == self.version
            and not getattr(self, "force", False)
        ):
            run.rec.new_group = plan.live
            run.report(
                "already live",
                Status.OK,
                f"{self.version} (launch template v{version}) is already live on {plan.live}; "
                "no traffic moved",
            )
            run.finish(SUCCEEDED, "already live")
            return None
        self._bring_up(run, api, plan, version)
        self._preview(run, router, api, plan.idle)
        return router, api, plan, version


def _listener_vars(api: Groups, arn: str) -> dict[str, Any]:
    """``test_url`` and ``test_listener_port`` of a listener (one Describe call each)."""
    from cdlib.aws.provision import aws_call

    listener = aws_call(f"listener {arn}", api.elbv2.describe_listeners, ListenerArns=[arn])[
        "Listeners"
    ][0]
    lbs = aws_call(
        "load balancer",
        api.elbv2.describe_load_balancers,
        LoadBalancerArns=[listener["LoadBalancerArn"]],
    )["LoadBalancers"]
    scheme = "https" if listener.get("Protocol") == "HTTPS" else "http"
    port = int(listener["Port"])
    return {"test_url": f"{scheme}://{lbs[0]['DNSName']}:{port}", "test_listener_port": port}


@dataclass(kw_only=True)
class AsgBlueGreen(_Immutable, BlueGreen):
    """Immutable blue/green over two Auto Scaling groups.

    Options (besides those of :class:`~cdlib.release.bluegreen.BlueGreen`):
        router: an :class:`~cdlib.release.routers.AutoScalingSpec`.
        launch_template: a :class:`~cdlib.aws.compute.LaunchTemplateSpec` with the new
            AMI / user data; a new version is created only when its content changed
            (a re-run reuses it).
        launch_template_version: instead, an existing version number.
        size: instances for the new group (default: the live group's desired capacity;
            required for the first release).
        keep_old: after the bake time, ``"scale_in"`` (the old group to 0 instances) or
            ``"warm"`` (kept running for an instant rollback).
        instance_timeout, poll_interval: waiting for instances to serve.

    Steps: read, launch template version, idle group to the new version at the live
    group's size (instances of another version are replaced first), wait until they
    are in service and healthy in the target group, test listener to the idle group
    and ``preview_checks`` through it (vars ``test_url``, ``test_listener_port``),
    switch the production listener at once, ``post_checks``, bake (``alarms``), then
    ``keep_old``. A failure after the switch (post checks, an alarm) switches back to
    the old group, which is still at full size.
    """

    kind = "asg blue/green"

    def _execute(self, run: ReleaseRun) -> None:
        front = self._front(run)
        if front is None:
            return
        router, api, plan, version = front
        live, idle = plan.live, plan.idle
        run.hook("before_shift", idle, {})
        new = self._switch(run, router, live, idle, f"v{version}")
        if new is None:
            return
        run.hook("after_shift", idle, new.weights)
        try:
            self._post_checks(run, idle)
            run.bake()
        except Interrupted:
            raise
        except Exception as exc:
            if live is None:
                raise ReleaseFailed(
                    f"{exc}; this was the first release, there is no group to switch back to"
                ) from exc
            aborted = isinstance(exc, Aborted)
            self._switch_back(run, router, live, str(exc), aborted)
            raise ReleaseFailed(
                f"rolled back to {live}: {exc}", rolled_back=True, aborted=aborted
            ) from exc
        self._retire(run, api, live)
        run.finish(SUCCEEDED)


@dataclass(kw_only=True)
class AsgCanary(_Immutable, Canary):
    """Immutable canary over two Auto Scaling groups: the new group takes weighted steps.

    Options: those of :class:`~cdlib.release.canary.Canary` (``steps``, ``thresholds``,
    ``on_inconclusive`` ...; not ``analysis_checks``) and of :class:`AsgBlueGreen`. The
    analysis reads the canary target group's CloudWatch metrics, as the ELBv2 canary.
    A failing analysis, an abort or an alarm sets the canary's weight back to 0; the old
    group is retired (``keep_old``) only after the last step and the bake time.
    """

    kind = "asg canary"

    def _execute(self, run: ReleaseRun) -> None:
        front = self._front(run)
        if front is None:
            return
        router, api, plan, _version = front
        stable, canary = plan.live, plan.idle
        if stable is None:
            raise ReleaseFailed(
                "no group is live yet: a canary needs a stable group; make the first "
                "release an AsgBlueGreen"
            )
        if not run.ctx.check:
            router.tag_release(canary, self.version)
        self._expected = dict(router.state().weights)
        try:
            for step in self.steps:
                self._step(run, router, step, stable, canary)
            run.bake()
        except (ReleaseFailed, Aborted) as exc:
            if run.ctx.check:
                raise
            aborted = isinstance(exc, Aborted)
            self._back_to_stable(run, router, stable, canary, str(exc), aborted)
            raise ReleaseFailed(
                f"canary rolled back to {stable}: {exc}", rolled_back=True, aborted=aborted
            ) from exc
        if run.ctx.check:
            return
        self._retire(run, api, stable)
        run.finish(SUCCEEDED)


__all__ = ["AsgBlueGreen", "AsgCanary", "KeepOld", "TemplateFn"]
