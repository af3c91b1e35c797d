"""Traffic routers: move user traffic between target groups (blue/green, canary).

Implementations of one :class:`Router` interface: :class:`HAProxyRouter`
(runtime API; the local default, see :class:`LocalHAProxy`),
:class:`ElbV2Router` (AWS ELBv2; boto3 is imported only when it is used) and
:class:`NginxRouter` (a generated nginx config, reloaded gracefully). A router's
metrics say what they measure (:class:`RouterMetrics`); its spec registers itself by
kind (:mod:`cdlib.traffic.spec`).
"""

from cdlib.traffic.base import (
    DEFAULT_PREVIEW_HEADER,
    BasicRouter,
    DrainTimeoutError,
    GroupMetrics,
    HealthReport,
    PreviewRoute,
    ReadBackError,
    Router,
    RouterFeatureError,
    RouterInputError,
    RouterMetrics,
    RouterState,
    StickySpec,
    Target,
    TargetGroupMetrics,
    TargetHealth,
    TrafficError,
)
from cdlib.traffic.elbv2 import ElbV2Router, cloudwatch_client, elbv2_client
from cdlib.traffic.elbv2_provision import (
    LoadBalancerHandles,
    LoadBalancerSpec,
    ProvisionError,
    RuleSpec,
    TargetGroupSpec,
    ensure_load_balancer,
)
from cdlib.traffic.haproxy import HAProxyPersistence, HAProxyRouter
from cdlib.traffic.haproxy_config import (
    ConfigError,
    HAProxySite,
    ServerEntry,
    reload_if_changed,
    render_config,
)
from cdlib.traffic.haproxy_process import HAProxyProcess, HAProxyProcessError
from cdlib.traffic.haproxy_runtime import RuntimeAPIError, RuntimeClient
from cdlib.traffic.local import LocalHAProxy
from cdlib.traffic.nginx import NginxConfigError, NginxRouter, NginxSpec
from cdlib.traffic.nginx_config import NginxSite
from cdlib.traffic.spec import RouterSpec, router_kinds, spec_from_json

__all__ = [
    "DEFAULT_PREVIEW_HEADER",
    "BasicRouter",
    "ConfigError",
    "DrainTimeoutError",
    "ElbV2Router",
    "GroupMetrics",
    "HAProxyPersistence",
    "HAProxyProcess",
    "HAProxyProcessError",
    "HAProxyRouter",
    "HAProxySite",
    "HealthReport",
    "LoadBalancerHandles",
    "LoadBalancerSpec",
    "LocalHAProxy",
    "NginxConfigError",
    "NginxRouter",
    "NginxSite",
    "NginxSpec",
    "PreviewRoute",
    "ProvisionError",
    "ReadBackError",
    "Router",
    "RouterFeatureError",
    "RouterInputError",
    "RouterMetrics",
    "RouterSpec",
    "RouterState",
    "RuleSpec",
    "RuntimeAPIError",
    "RuntimeClient",
    "ServerEntry",
    "StickySpec",
    "Target",
    "TargetGroupMetrics",
    "TargetGroupSpec",
    "TargetHealth",
    "TrafficError",
    "cloudwatch_client",
    "elbv2_client",
    "ensure_load_balancer",
    "reload_if_changed",
    "render_config",
    "router_kinds",
    "spec_from_json",
]
