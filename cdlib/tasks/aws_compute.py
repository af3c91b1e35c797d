"""AWS compute provisioning tasks: ``security_group``, ``launch_template``, ``auto_scaling_group``.

They talk to AWS from the control machine (run them on ``localhost`` or with
``run_once=True``). Each takes a spec from :mod:`cdlib.aws.compute`, or a callable
building one from the host's variables, so one playbook provisions several
environments from their inventories. Check mode makes Describe calls only and lists what
a real run would do; a converged environment costs no write call.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cdlib.aws.compute import (
    AutoScalingGroupSpec,
    ComputeError,
    ComputeInputError,
    LaunchTemplateSpec,
    SecurityGroupSpec,
)
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Task, Then, option
from cdlib.engine.templating import Templar


@dataclass(kw_only=True)
class _AwsTask(Task[Plan]):
    """Options shared by the AWS tasks."""

    region: str | None = field(default=None, metadata=option(templated=True))
    endpoint_url: str | None = field(default=None, metadata=option(templated=True))
    profile: str | None = field(default=None, metadata=option(templated=True))

    def _client(self, service: str) -> Any:
        from cdlib.aws.provision import client

        return client(
            service, region=self.region, endpoint_url=self.endpoint_url, profile=self.profile
        )

    def _build(self, spec: Any, variables: Mapping[str, object]) -> Any:
        """The spec itself, or the one the callable builds from the host's variables."""
        if not callable(spec):
            return spec
        try:
            return spec(variables)
        except ComputeInputError as exc:
            raise self.error(str(exc)) from None
        except KeyError as exc:
            raise self.error(f"spec: undefined variable {exc}") from None


def _failed(exc: Exception) -> TaskFailed:
    return TaskFailed(str(exc))


@dataclass
class SecurityGroup(_AwsTask):
    """Ensure a security group with exactly the given inbound rules.

    Options:
        spec: a :class:`~cdlib.aws.compute.SecurityGroupSpec`, or a callable taking the
            host's variables and returning one.
        region, endpoint_url, profile: where and as whom to call AWS (default: boto3's).

    Rules not in the spec are revoked (the group is cdlib's); tags are added, never
    removed. Check mode lists the group and rules a real run would create.

    Example:
        ```python
        from cdlib.aws.compute import IngressRule, SecurityGroupSpec

        spec = SecurityGroupSpec("web-app", "vpc-0abc", "web app instances",
                                 ingress=(IngressRule(8080, source_group="web-lb"),))
        play.task(tasks.security_group(spec, region="eu-west-1"))
        ```
    """

    spec: SecurityGroupSpec | Callable[[Mapping[str, Any]], SecurityGroupSpec]

    kind = "security_group"

    def describe(self) -> str:
        """``security_group <name>``."""
        return f"security_group {getattr(self.spec, 'name', '(per host)')}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Build the spec for this host (on this host's copy)."""
        t = super().prepare(variables, templar)
        t.spec = self._build(self.spec, variables)
        return t

    @property
    def built(self) -> SecurityGroupSpec:
        """The spec, once :meth:`prepare` built it for a host."""
        if not isinstance(self.spec, SecurityGroupSpec):
            raise TaskFailed("spec not built: run the task through a play")
        return self.spec

    def plan(self, ctx: HostContext) -> Plan:
        """A dry run: Describe calls only."""
        from cdlib.aws.provision import ensure_security_group

        try:
            dry = ensure_security_group(self._client("ec2"), self.built, dry_run=True)
        except ComputeError as exc:
            raise _failed(exc) from exc
        if not dry.changes:
            return Plan(ok_msg=f"{self.built.name} {dry.group_id} in place")
        return Plan(changes=list(dry.changes))

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Create and fix what the plan found."""
        from cdlib.aws.provision import ensure_security_group

        try:
            done = ensure_security_group(self._client("ec2"), self.built)
        except ComputeError as exc:
            raise _failed(exc) from exc
        return f"{self.built.name} {done.group_id}"


@dataclass
class LaunchTemplate(_AwsTask):
    """Ensure a launch template; a new version only when its content changes.

        Options:
            spec: a :class:`~cdlib.aws.compute.LaunchTemplateSpec` (or a callable taking the
                host's variables and returning one).
            user_data_template: a jinja2 template file (looked up beside the playbook) rendered
                with the host's variables (and ``user_data_vars``) into the spec's user data.
            user_data_vars: extra variables for that template.
            region, endpoint_url, profile: as for ``security_group``.

        Compared with the latest version: AMI, instance type, user data, security groups,
        IAM instance profile, key name and instance tags. A change makes a new version and
        makes it the default; the result's message names the version holding the spec
        (``version 3``), which is what a release records. AMI and instance type are checked
        with AWS before anything is written. Check mode makes Describe calls only and reports
    the version a real run would make; ``--diff`` shows the user data change.

        Example:
            ```python
            from cdlib.aws.compute import LaunchTemplateSpec

            spec = LaunchTemplateSpec("web", "ami-0abc1234", "t3.small",
                                      security_groups=("web-app",), vpc_id="vpc-0abc")
            play.task(tasks.launch_template(spec, user_data_template="templates/boot.sh.j2"))
            ```
    """

    spec: LaunchTemplateSpec | Callable[[Mapping[str, Any]], LaunchTemplateSpec]
    user_data_template: str | None = None
    user_data_vars: Mapping[str, Any] | None = None

    kind = "launch_template"

    def describe(self) -> str:
        """``launch_template <name>``."""
        return f"launch_template {getattr(self.spec, 'name', '(per host)')}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Build the spec and render the user data for this host (local work only)."""
        t = super().prepare(variables, templar)
        spec = self._build(self.spec, variables)
        if t.user_data_template is not None:
            tvars = {**variables, **(t.user_data_vars or {})}
            text = templar.render_file(t.user_data_template, tvars)
            try:
                spec = dataclasses.replace(spec, user_data=text)
            except ComputeInputError as exc:
                raise self.error(str(exc)) from None
        t.spec = spec
        return t

    @property
    def built(self) -> LaunchTemplateSpec:
        """The spec, once :meth:`prepare` built it for a host."""
        if not isinstance(self.spec, LaunchTemplateSpec):
            raise TaskFailed("spec not built: run the task through a play")
        return self.spec

    def plan(self, ctx: HostContext) -> Plan:
        """A dry run: Describe calls only; the diff is the user data's."""
        from cdlib.aws.provision import ensure_launch_template

        try:
            dry = ensure_launch_template(self._client("ec2"), self.built, dry_run=True)
        except ComputeError as exc:
            raise _failed(exc) from exc
        if not dry.changes:
            return Plan(ok_msg=f"{self.built.name} version {dry.version}")
        diff = None
        if ctx.diff and not self.no_log and (dry.user_data_before or "") != self.built.user_data:
            lines = difflib.unified_diff(
                [ctx.redact(x) for x in (dry.user_data_before or "").splitlines(keepends=True)],
                [ctx.redact(x) for x in self.built.user_data.splitlines(keepends=True)],
                fromfile=f"{self.built.name} user data (before)",
                tofile=f"{self.built.name} user data (after)",
            )
            diff = "".join(lines) or None
        return Plan(changes=list(dry.changes), diff=diff)

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Create the template or its new version."""
        from cdlib.aws.provision import ensure_launch_template

        try:
            done = ensure_launch_template(self._client("ec2"), self.built)
        except ComputeError as exc:
            raise _failed(exc) from exc
        return f"{self.built.name} version {done.version}"


@dataclass
class AutoScalingGroup(_AwsTask):
    """Ensure an Auto Scaling group and wait until its instances serve.

    Options:
        spec: an :class:`~cdlib.aws.compute.AutoScalingGroupSpec` (or a callable taking the
            host's variables and returning one).
        wait: wait until the group's desired number of instances is InService and healthy
            in every attached target group (default True).
        wait_timeout: seconds to wait; then the task fails naming each instance that is
            not ready and why (default 600).
        region, endpoint_url, profile: as for ``security_group``.

    Subnets, target groups and the launch template are checked before anything is
    written. Sizes, subnets, health check, target groups and tags are kept as specified;
    the desired capacity and the launch template version are set at creation and then
    belong to releases (a re-run only moves the desired capacity back into min..max).
    Instances that left the group but are still registered in its target groups are
    deregistered. Check mode reads only and never waits.

    Example:
        ```python
        from cdlib.aws.compute import AutoScalingGroupSpec

        spec = AutoScalingGroupSpec("web-blue", "web", ("subnet-a", "subnet-b"),
                                    min_size=2, max_size=4, target_groups=("web-blue",))
        play.task(tasks.auto_scaling_group(spec, wait_timeout=900))
        ```
    """

    spec: AutoScalingGroupSpec | Callable[[Mapping[str, Any]], AutoScalingGroupSpec]
    wait: bool = True
    wait_timeout: float = 600.0
    poll_interval: float = 5.0

    kind = "auto_scaling_group"

    def validate(self) -> None:
        """A positive timeout and poll interval."""
        if self.wait_timeout <= 0 or self.poll_interval <= 0:
            raise self.error("wait_timeout and poll_interval must be positive")

    def describe(self) -> str:
        """``auto_scaling_group <name>``."""
        return f"auto_scaling_group {getattr(self.spec, 'name', '(per host)')}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Build the spec for this host (on this host's copy)."""
        t = super().prepare(variables, templar)
        t.spec = self._build(self.spec, variables)
        return t

    @property
    def built(self) -> AutoScalingGroupSpec:
        """The spec, once :meth:`prepare` built it for a host."""
        if not isinstance(self.spec, AutoScalingGroupSpec):
            raise TaskFailed("spec not built: run the task through a play")
        return self.spec

    def _ensure(self, *, dry_run: bool) -> Any:
        from cdlib.aws.provision import ensure_auto_scaling_group

        try:
            return ensure_auto_scaling_group(
                self._client("autoscaling"),
                self._client("ec2"),
                self._client("elbv2"),
                self.built,
                dry_run=dry_run,
                wait=self.wait,
                timeout=self.wait_timeout,
                poll=self.poll_interval,
            )
        except ComputeError as exc:
            raise _failed(exc) from exc

    def plan(self, ctx: HostContext) -> Plan:
        """A dry run; a converged group that is not yet in service still waits in apply."""
        dry = self._ensure(dry_run=True)
        ready = dry.readiness
        if dry.changes:
            return Plan(changes=list(dry.changes))
        msg = ready.report(self.built.name) if ready else f"{self.built.name} in place"
        waits = self.wait and ready is not None and not ready.done
        return Plan(ok_msg=msg, then=Then.ALWAYS if waits else Then.APPLY)

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Create or fix the group, then wait until it serves."""
        done = self._ensure(dry_run=False)
        return str(done.readiness.report(self.built.name)) if done.readiness else None


#: Lower-case names for playbooks, as with ``tasks.file``.
security_group = SecurityGroup
launch_template = LaunchTemplate
auto_scaling_group = AutoScalingGroup

__all__ = [
    "AutoScalingGroup",
    "LaunchTemplate",
    "SecurityGroup",
    "auto_scaling_group",
    "launch_template",
    "security_group",
]
