"""Auto Scaling groups as release groups: read, resize, change template version, wait.

The immutable strategies (:mod:`cdlib.release.asg`) and ``cdlib rollback`` of their
releases (:class:`~cdlib.release.routers.AutoScalingSpec`) share these. Reading and
waiting reuse :mod:`cdlib.aws.provision` (a group is ready when its desired number of
instances is InService, healthy to the group and healthy in its target group); AWS
errors become :class:`~cdlib.release.failed.ReleaseFailed` naming the resource.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cdlib.aws.compute import (
    AutoScalingGroupState,
    ComputeError,
    MissingResourceError,
    Readiness,
    read_auto_scaling_group,
)
from cdlib.release.failed import ReleaseFailed


@dataclass(frozen=True)
class Capacity:
    """A group's sizes, as recorded to restore it on rollback."""

    min_size: int
    max_size: int
    desired: int

    def to_json(self) -> list[int]:
        """``[min, max, desired]``."""
        return [self.min_size, self.max_size, self.desired]

    @classmethod
    def from_json(cls, data: Any) -> Capacity:
        """From ``[min, max, desired]``."""
        lo, hi, want = (int(x) for x in data)
        return cls(lo, hi, want)


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn compute errors (missing resource, refused call) into ``ReleaseFailed``."""
    try:
        yield
    except ComputeError as exc:
        raise ReleaseFailed(str(exc)) from None


class Groups:
    """The Auto Scaling groups behind a router's groups, and their clients.

    Args:
        names: router group -> Auto Scaling group name.
        target_groups: router group -> target group ARN.
        region: the AWS region (default: boto3's).
        endpoint_url: another endpoint (default: boto3's, or ``$AWS_ENDPOINT_URL``).
    """

    def __init__(
        self,
        names: Mapping[str, str],
        target_groups: Mapping[str, str],
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        from cdlib.aws.provision import client

        self.names = dict(names)
        self.target_groups = dict(target_groups)
        self.autoscaling = client("autoscaling", region=region, endpoint_url=endpoint_url)
        self.ec2 = client("ec2", region=region, endpoint_url=endpoint_url)
        self.elbv2 = client("elbv2", region=region, endpoint_url=endpoint_url)

    def name(self, group: str) -> str:
        """The Auto Scaling group of a router group."""
        if group not in self.names:
            raise ReleaseFailed(f"no Auto Scaling group given for router group {group!r}")
        return self.names[group]

    def state(self, group: str) -> AutoScalingGroupState:
        """Read the group; :class:`ReleaseFailed` naming it when it does not exist."""
        from cdlib.aws.provision import aws_call

        name = self.name(group)
        with aws_errors():
            state = read_auto_scaling_group(
                aws_call(
                    f"Auto Scaling group {name}",
                    self.autoscaling.describe_auto_scaling_groups,
                    AutoScalingGroupNames=[name],
                )
            )
            if state is None:
                raise MissingResourceError(f"Auto Scaling group {name} not found")
        return state

    def resize(
        self,
        group: str,
        capacity: Capacity,
        *,
        version: str | None = None,
        template: str | None = None,
    ) -> None:
        """Set the group's sizes (and the launch template version it launches)."""
        from cdlib.aws.provision import aws_call

        name = self.name(group)
        extra: dict[str, Any] = {}
        if version is not None and template is not None:
            extra["LaunchTemplate"] = {"LaunchTemplateName": template, "Version": version}
        with aws_errors():
            aws_call(
                f"Auto Scaling group {name}",
                self.autoscaling.update_auto_scaling_group,
                AutoScalingGroupName=name,
                MinSize=capacity.min_size,
                MaxSize=capacity.max_size,
                DesiredCapacity=capacity.desired,
                **extra,
            )

    def forget_departed(self, group: str) -> list[str]:
        """Deregister instances that left the group but stay registered in its target group
        (a real ELB drops them itself; the call then finds none)."""
        from cdlib.aws.provision import deregister_departed

        with aws_errors():
            return deregister_departed(
                self.ec2,
                self.elbv2,
                self.state(group),
                {group: self.target_groups[group]},
            )

    def wait(self, group: str, *, timeout: float, poll: float) -> Readiness:
        """Wait until the group's desired instances serve; ``ReleaseFailed`` names those
        that do not, after ``timeout``."""
        from cdlib.aws.provision import wait_in_service

        self.forget_departed(group)
        with aws_errors():
            return wait_in_service(
                self.autoscaling,
                self.elbv2,
                self.name(group),
                {group: self.target_groups[group]},
                timeout=timeout,
                poll=poll,
            )

    def wait_empty(self, group: str, *, timeout: float, poll: float) -> None:
        """Wait until the group has no instances left (after a resize to 0)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = [i.instance_id for i in self.state(group).instances]
            if not left:
                self.forget_departed(group)
                return
            if time.monotonic() >= deadline:
                raise ReleaseFailed(
                    f"{self.name(group)}: instances {', '.join(left)} still in the group "
                    f"after {timeout:g}s"
                )
            time.sleep(poll)

    def template_version_exists(self, template: str, version: str) -> bool:
        """Whether launch template ``template`` has version ``version``."""
        from cdlib.traffic.aws_api import call, error_code

        try:
            out = call(
                self.ec2.describe_launch_template_versions,
                LaunchTemplateName=template,
                Versions=[version],
            )
        except Exception as exc:
            code = error_code(exc)
            if "NotFound" in code:
                return False
            if code:
                raise ReleaseFailed(
                    f"launch template {template}: DescribeLaunchTemplateVersions ({code})"
                ) from None
            raise
        return bool(out.get("LaunchTemplateVersions"))

    def describe(self, group: str) -> str:
        """``web-green: template web v3, 2 of 2 instances in service``."""
        st = self.state(group)
        serving = sum(1 for i in st.instances if i.lifecycle == "InService")
        return (
            f"{self.name(group)}: launch template {st.launch_template} "
            f"v{st.launch_template_version}, {serving} instance(s) in service "
            f"(desired {st.desired}, {st.min_size}..{st.max_size})"
        )


__all__ = ["Capacity", "Groups", "aws_errors"]
