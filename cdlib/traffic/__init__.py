"""Traffic routers: move user traffic between target groups (blue/green, canary).

Two implementations of one :class:`Router` interface: :class:`HAProxyRouter`
(runtime API; the local default, see :class:`LocalHAProxy`) and
:class:`ElbV2Router` (AWS ELBv2; boto3 is imported only when it is used).
"""

from cdlib.traffic.base import (
    DEFAULT_PREVIEW_HEADER,
    DrainTimeoutError,
    GroupMetrics,
    HealthReport,
    PreviewRoute,
    ReadBackError,
    Router,
    RouterFeatureError,
    RouterInputError,
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

__all__ = [
    "DEFAULT_PREVIEW_HEADER",
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
    "PreviewRoute",
    "ProvisionError",
    "ReadBackError",
    "Router",
    "RouterFeatureError",
    "RouterInputError",
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
]
