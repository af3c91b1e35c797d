"""Provisioning tasks for traffic routers: ``haproxy_config`` and ``elbv2_load_balancer``.

``haproxy_config`` renders HAProxy's config with jinja2 on the control machine,
validates it on the host with ``haproxy -c`` and reloads gracefully, only when
the text changed. ``elbv2_load_balancer`` ensures an application load balancer,
its target groups, listener and rules; it talks to AWS from the control machine
(run it once: ``run_once=True`` on any host, or on ``localhost``).
"""

from __future__ import annotations

import difflib
import hashlib
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cdlib.connections.shell import q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.traffic.base import TrafficError
from cdlib.traffic.elbv2_provision import LoadBalancerSpec, ensure_load_balancer
from cdlib.traffic.haproxy_config import HAProxySite, carry_runtime_state, render_config


def _validated_install_command(path: str, haproxy: str) -> str:
    """Write stdin to a temp file beside ``path``, check it with haproxy -c, then rename."""
    d = posixpath.dirname(path) or "."
    base = posixpath.basename(path)
    return " && ".join(
        [
            f"t=$(mktemp {q(d + '/.' + base + '.cdlib-XXXXXX')})",
            "trap 'rm -f \"$t\"' EXIT",
            'cat > "$t"',
            'chmod 0644 "$t"',
            # -c parses the whole file as the running haproxy would; a bad config
            # never replaces the good one.
            f'{q(haproxy)} -c -q -f "$t"',
            f'mv -f -- "$t" {q(path)}',
            "trap - EXIT",
        ]
    )


def _route_map_command(path: str) -> str:
    """Create the route map ``path`` empty (with its directory) unless it exists.

    Never truncates: an existing map holds which group is live.
    """
    d = posixpath.dirname(path) or "/"
    return f"mkdir -p -- {q(d)} && {{ [ -e {q(path)} ] || (umask 022; set -C; : > {q(path)}); }}"


@dataclass(kw_only=True)
class HAProxyPlan(Plan):
    """The rendered configuration to install."""

    config: bytes = b""
    #: The route map file to create empty first (the config reads it; ``haproxy -c``
    #: fails without it).
    create_map: str | None = None


@dataclass
class HAProxyConfig(Task[HAProxyPlan]):
    """Render HAProxy's config from a site description; validate; reload if it changed.

    Options:
        site: a :class:`~cdlib.traffic.haproxy_config.HAProxySite` (frontend, backend,
            servers of each group, admin socket, state file).
        dest: the config file on the host (default ``/etc/haproxy/haproxy.cfg``).
        reload_command: run after a change (default ``systemctl reload haproxy``, a
            graceful reload); ``None`` to leave reloading to a handler.
        haproxy: the haproxy binary used for ``haproxy -c``.
        keep_runtime_weights: servers already in the file keep the weight and
            maintenance state the router gave them, so re-provisioning does not undo
            a switch (default True).

    A site with a route map (``route_map_dir``) gets its map file created empty when it
    is missing (HAProxy cannot start without it); an existing map, which says which
    group is live, is left as it is. Check mode reports the change with a diff; nothing
    is written or reloaded.

    Example:
        ```python
        site = HAProxySite(bind="0.0.0.0:80", admin_socket="/run/haproxy/admin.sock",
                           servers=(ServerEntry("blue", Target("10.0.0.11", 8080), weight=100),))
        play.task(tasks.haproxy_config(site))
        ```
    """

    site: HAProxySite
    dest: str = field(
        default="/etc/haproxy/haproxy.cfg", metadata=option(templated=True, check=absolute_path)
    )
    reload_command: str | None = field(
        default="systemctl reload haproxy", metadata=option(templated=True)
    )
    haproxy: str = "haproxy"
    keep_runtime_weights: bool = True

    kind = "haproxy_config"

    def describe(self) -> str:
        """``haproxy_config /etc/haproxy/haproxy.cfg``."""
        return f"haproxy_config {self.dest}"

    def facts(self) -> list[Fact[object]]:
        """The config file, and the route map file when the site has one."""
        route_map = self.site.route_map
        return [PathFact(self.dest), *([PathFact(route_map)] if route_map else [])]

    def _missing_map(self, ctx: HostContext) -> str | None:
        route_map = self.site.route_map
        if route_map is None:
            return None
        st: FileState = ctx.fact(PathFact(route_map))
        if st.exists and st.kind != "file":
            raise TaskFailed(f"route map {route_map} exists and is a {st.kind}, not a file")
        return None if st.exists else route_map

    def plan(self, ctx: HostContext) -> HAProxyPlan:
        """Render and compare with the file on the host."""
        st: FileState = ctx.fact(PathFact(self.dest))
        if st.exists and st.kind != "file":
            raise TaskFailed(f"{self.dest} exists and is a {st.kind}, not a file")
        current = st.content.decode("utf-8", "replace") if st.content is not None else None
        if st.exists and current is None:
            raise TaskFailed(f"{self.dest} is too large to compare; not an HAProxy config?")
        site = carry_runtime_state(self.site, current) if self.keep_runtime_weights else self.site
        text = render_config(site)
        data = text.encode()
        missing_map = self._missing_map(ctx)
        made = [f"create empty route map {missing_map}"] if missing_map else []
        if st.exists and hashlib.sha256(data).hexdigest() == st.sha256:
            if missing_map:
                return HAProxyPlan(changes=made, affects=[missing_map], create_map=missing_map)
            return HAProxyPlan(ok_msg="in place")
        changes = [*made, "create" if not st.exists else "content"]
        if self.reload_command:
            changes.append("reload")
        diff = None
        if ctx.diff:
            lines = difflib.unified_diff(
                [ctx.redact(x) for x in (current or "").splitlines(keepends=True)],
                [ctx.redact(x) for x in text.splitlines(keepends=True)],
                fromfile=f"{self.dest} (before)" if st.exists else "/dev/null",
                tofile=f"{self.dest} (after)",
            )
            diff = "".join(lines) or None
        affects = [self.dest, *([missing_map] if missing_map else [])]
        return HAProxyPlan(
            changes=changes, diff=diff, affects=affects, config=data, create_map=missing_map
        )

    def apply(self, ctx: HostContext, plan: HAProxyPlan) -> str | None:
        """Create a missing route map; install after ``haproxy -c`` passed; reload."""
        if plan.create_map:
            ctx.run(_route_map_command(plan.create_map))
        if not plan.config:
            return f"created empty route map {plan.create_map}"
        ctx.run(_validated_install_command(self.dest, self.haproxy), stdin=plan.config)
        if self.reload_command:
            ctx.run(self.reload_command)
            return "installed and reloaded"
        return "installed"


@dataclass
class ElbV2LoadBalancer(Task[Plan]):
    """Ensure an ELBv2 application load balancer with target groups, listener and rules.

    Options:
        spec: a :class:`~cdlib.traffic.elbv2_provision.LoadBalancerSpec`, or a callable
            taking the host's variables and returning one (one playbook, several
            environments).
        region: AWS region (default: boto3's configuration).
        endpoint_url: another ELBv2 endpoint (moto, LocalStack) for tests.
        profile: AWS profile name (default: boto3's chain: env, files, instance role).

    Idempotent: a second run makes only Describe calls. Listener and rule forward
    actions are created once and afterwards belong to the router (never reverted).
    Check mode asks AWS with Describe calls only and reports what would be created.

    Example:
        ```python
        spec = LoadBalancerSpec(
            name="shop", vpc_id="vpc-0abc", subnets=("subnet-a", "subnet-b"),
            target_groups=(TargetGroupSpec("blue", "shop-blue", 8080),
                           TargetGroupSpec("green", "shop-green", 8080)),
            default_group="blue",
        )
        play.task(tasks.elbv2_load_balancer(spec, region="eu-west-1", run_once=True))
        ```
    """

    spec: LoadBalancerSpec | Callable[[Mapping[str, Any]], LoadBalancerSpec]
    region: str | None = field(default=None, metadata=option(templated=True))
    endpoint_url: str | None = field(default=None, metadata=option(templated=True))
    profile: str | None = field(default=None, metadata=option(templated=True))

    kind = "elbv2_load_balancer"

    def describe(self) -> str:
        """``elbv2_load_balancer <name>``."""
        return f"elbv2_load_balancer {getattr(self.spec, 'name', '(per host)')}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Build a per-host spec from the host's variables (on this host's copy)."""
        t = super().prepare(variables, templar)
        if not isinstance(t.spec, LoadBalancerSpec):
            try:
                t.spec = t.spec(variables)
            except (TrafficError, KeyError) as exc:
                raise self.error(f"spec: {exc}") from None
        return t

    @property
    def _spec(self) -> LoadBalancerSpec:
        if not isinstance(self.spec, LoadBalancerSpec):
            raise TaskFailed("spec not built: run the task through a play")
        return self.spec

    def _client(self) -> Any:
        from cdlib.traffic.aws_api import elbv2_client

        extra: Mapping[str, Any] = {"profile_name": self.profile} if self.profile else {}
        return elbv2_client(region=self.region, endpoint_url=self.endpoint_url, **extra)

    def plan(self, ctx: HostContext) -> Plan:
        """A dry run: Describe calls only."""
        try:
            dry = ensure_load_balancer(self._client(), self._spec, dry_run=True)
        except TrafficError as exc:
            raise TaskFailed(str(exc)) from exc
        if not dry.changed:
            return Plan(ok_msg=f"{self._spec.name} in place")
        return Plan(changes=list(dry.changed))

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Create or fix what the plan found."""
        try:
            done = ensure_load_balancer(self._client(), self._spec)
        except TrafficError as exc:
            raise TaskFailed(str(exc)) from exc
        return f"listener {done.listener_arn}"


#: Lower-case names for playbooks, as with ``tasks.file``.
haproxy_config = HAProxyConfig
elbv2_load_balancer = ElbV2LoadBalancer


__all__ = ["ElbV2LoadBalancer", "HAProxyConfig", "elbv2_load_balancer", "haproxy_config"]
