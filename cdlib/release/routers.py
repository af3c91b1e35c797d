"""The router specs of HAProxy, ELBv2 and ELBv2 over Auto Scaling groups.

The spec base class, its registry by kind and :func:`spec_from_json` live in
:mod:`cdlib.traffic.spec` (re-exported here); a spec registers itself when defined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cdlib.traffic.base import DEFAULT_PREVIEW_HEADER, Router
from cdlib.traffic.spec import RouterSpec, router_kinds, spec_from_json


@dataclass
class LocalHAProxySpec(RouterSpec):
    """An HAProxy on this machine whose files live in ``workdir`` (the local default).

    With ``ensure_running`` a real release (or rollback) starts it when its admin socket
    does not answer; it keeps running after cdlib exits, so ``cdlib rollback`` can use it
    later. ``cdlib status`` and check mode never start it.
    """

    workdir: str
    bind: str = "127.0.0.1:8080"
    groups: tuple[str, ...] = ("blue", "green")
    check_inter_ms: int = 500
    check_rise: int = 1
    check_fall: int = 2
    ensure_running: bool = True
    #: Rendered into the config: the preview header and the sticky canary's key.
    preview_header: str | None = DEFAULT_PREVIEW_HEADER
    sticky_cookie: str | None = None
    sticky_header: str | None = None
    kind: ClassVar[str] = "local-haproxy"

    def _local(self) -> Any:
        from cdlib.traffic.local import LocalHAProxy

        return LocalHAProxy(
            self.workdir,
            bind=self.bind,
            groups=self.groups,
            check_inter_ms=self.check_inter_ms,
            check_rise=self.check_rise,
            check_fall=self.check_fall,
            preview_header=self.preview_header,
            sticky_cookie=self.sticky_cookie,
            sticky_header=self.sticky_header,
        )

    def build(self) -> Router:
        """The router of this HAProxy, running or not (nothing is started here)."""
        router: Router = self._local().router
        return router

    def start_needed(self) -> str | None:
        """``start HAProxy in DIR`` when ``ensure_running`` and no worker answers."""
        if self.ensure_running and not self._local().running():
            return f"start HAProxy in {self.workdir}"
        return None

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> RouterSpec:
        """As the base, with ``workdir`` normalized as a path."""
        spec = super().from_json(fields)
        assert isinstance(spec, LocalHAProxySpec)
        spec.workdir = str(Path(spec.workdir))
        return spec

    def start(self) -> None:
        """Start HAProxy (rendering its first config) when ``ensure_running`` and stopped."""
        local = self._local()
        if self.ensure_running and not local.running():
            local.start()


@dataclass
class HAProxySpec(RouterSpec):
    """An HAProxy reached through its runtime API (unix socket path or ``host:port``)."""

    admin_socket: str
    backend: str = "app"
    groups: tuple[str, ...] = ("blue", "green")
    #: What the running config's preview and sticky rules key on (see ``HAProxySite``).
    preview_header: str | None = DEFAULT_PREVIEW_HEADER
    sticky_cookie: str | None = None
    sticky_header: str | None = None
    kind: ClassVar[str] = "haproxy"

    def build(self) -> Router:
        """The runtime-API router."""
        from cdlib.traffic.haproxy import HAProxyRouter
        from cdlib.traffic.haproxy_runtime import RuntimeClient

        return HAProxyRouter(
            RuntimeClient(self.admin_socket),
            groups=self.groups,
            backend=self.backend,
            preview_header=self.preview_header,
            sticky_cookie=self.sticky_cookie,
            sticky_header=self.sticky_header,
        )


@dataclass
class ElbV2Spec(RouterSpec):
    """An ELBv2 listener (or rule) forwarding to one target group per release group."""

    listener_arn: str
    target_groups: dict[str, str] = field(default_factory=dict)
    rule_arn: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    kind: ClassVar[str] = "elbv2"

    def build(self) -> Router:
        """The ELBv2 router with CloudWatch metrics (boto3 imported here)."""
        from cdlib.traffic.elbv2 import ElbV2Router, cloudwatch_client, elbv2_client

        endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        return ElbV2Router(
            elbv2_client(region=self.region, endpoint_url=endpoint),
            target_groups=self.target_groups,
            listener_arn=self.listener_arn,
            rule_arn=self.rule_arn,
            cloudwatch=cloudwatch_client(region=self.region, endpoint_url=endpoint),
        )


@dataclass
class AutoScalingSpec(ElbV2Spec):
    """An ELBv2 listener over target groups each fed by an Auto Scaling group.

    ``auto_scaling_groups`` maps each group (``blue``, ``green``) to its Auto Scaling
    group; ``test_listener_arn`` is the listener preview checks go through (on the same
    load balancer, forwarding to the idle group). A release records in its copy of the
    spec the launch template and version of each group (``launch_template_versions``)
    and the sizes of the group it moved traffic away from (``capacity``: group ->
    ``[min, max, desired]``), so ``cdlib rollback`` can scale it back first.
    """

    auto_scaling_groups: dict[str, str] = field(default_factory=dict)
    test_listener_arn: str | None = None
    launch_template: str | None = None
    launch_template_versions: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, list[int]] = field(default_factory=dict)
    kind: ClassVar[str] = "elbv2-asg"

    def groups_api(self) -> Any:
        """The :class:`~cdlib.release.asg_groups.Groups` of this spec (clients built)."""
        from cdlib.release.asg_groups import Groups

        return Groups(
            self.auto_scaling_groups,
            self.target_groups,
            region=self.region,
            endpoint_url=self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
        )

    def prepare_switch(self, to_group: str, *, timeout: float = 600.0) -> str | None:
        """Scale ``to_group``'s Auto Scaling group back to its recorded sizes (when it was
        scaled in or kept smaller) and wait until its instances serve."""
        from cdlib.release.asg_groups import Capacity

        recorded = self.capacity.get(to_group)
        if not recorded:
            return None
        want = Capacity.from_json(recorded)
        api = self.groups_api()
        st = api.state(to_group)
        done = None
        if st.desired < want.desired or st.min_size < want.min_size:
            api.resize(to_group, want)
            done = f"scaled {api.name(to_group)} back to {want.desired} instance(s)"
        ready = api.wait(to_group, timeout=timeout, poll=5.0)
        return done and f"{done}; {ready.report(api.name(to_group))}"

    def describe_groups(self) -> dict[str, str]:
        """Per group: its Auto Scaling group, launch template version, instance counts."""
        api = self.groups_api()
        return {g: api.describe(g) for g in self.auto_scaling_groups}


__all__ = [
    "AutoScalingSpec",
    "ElbV2Spec",
    "HAProxySpec",
    "LocalHAProxySpec",
    "RouterSpec",
    "router_kinds",
    "spec_from_json",
]
