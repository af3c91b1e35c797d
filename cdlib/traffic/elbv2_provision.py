"""Ensure an ELBv2 application load balancer, its target groups, listener and rules exist.

Idempotent: a second run with the same spec makes only Describe calls. The
forward actions of an existing listener or rule are never rewritten here:
once traffic flows, the router owns them, and re-provisioning must not switch
traffic back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdlib.traffic.aws_api import MANAGED_TAG, call, error_code, tag_list
from cdlib.traffic.base import RouterInputError, TrafficError, check_group_name

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

#: Tag put on everything cdlib creates, and the tag naming a target group's group.
GROUP_TAG = "cdlib:group"


class ProvisionError(TrafficError):
    """The existing load balancer conflicts with the spec in a way cdlib will not fix."""


@dataclass(frozen=True)
class TargetGroupSpec:
    """One target group: ``group`` is the router's name for it."""

    group: str
    name: str
    port: int
    protocol: str = "HTTP"
    target_type: str = "ip"
    health_check_path: str = "/health"

    def __post_init__(self) -> None:
        check_group_name(self.group)
        _check_name(f"target group {self.group}", self.name)
        if not 0 < self.port < 65536:
            raise RouterInputError(f"target group {self.name}: port {self.port} not in 1..65535")
        if self.target_type not in ("ip", "instance"):
            raise RouterInputError(
                f"target group {self.name}: target_type {self.target_type!r} is not ip or instance"
            )
        if not self.health_check_path.startswith("/"):
            raise RouterInputError(
                f"target group {self.name}: health_check_path must start with '/'"
            )


@dataclass(frozen=True)
class RuleSpec:
    """A listener rule forwarding matching requests to ``group``."""

    priority: int
    group: str
    path_patterns: tuple[str, ...] = ()
    host_headers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 50000:
            raise RouterInputError(f"rule priority {self.priority} is not in 1..50000")
        if not self.path_patterns and not self.host_headers:
            raise RouterInputError(f"rule {self.priority}: give path_patterns or host_headers")

    def conditions(self) -> list[dict[str, Any]]:
        """The rule's conditions in the API's shape (sorted for comparison)."""
        out: list[dict[str, Any]] = []
        if self.host_headers:
            out.append({"Field": "host-header", "Values": sorted(self.host_headers)})
        if self.path_patterns:
            out.append({"Field": "path-pattern", "Values": sorted(self.path_patterns)})
        return out


@dataclass(frozen=True)
class LoadBalancerSpec:
    """An application load balancer with its target groups, one listener and rules."""

    name: str
    vpc_id: str
    subnets: tuple[str, ...]
    target_groups: tuple[TargetGroupSpec, ...]
    default_group: str
    listener_port: int = 80
    listener_protocol: str = "HTTP"
    rules: tuple[RuleSpec, ...] = ()
    security_groups: tuple[str, ...] = ()
    scheme: str = "internet-facing"
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("load balancer", self.name)
        if len(self.subnets) < 2:
            raise RouterInputError(f"load balancer {self.name}: needs subnets in two AZs")
        groups = [t.group for t in self.target_groups]
        if not groups or len(set(groups)) != len(groups):
            raise RouterInputError(f"load balancer {self.name}: target groups empty or duplicated")
        for where, group in [("default_group", self.default_group)] + [
            (f"rule {r.priority}", r.group) for r in self.rules
        ]:
            if group not in groups:
                raise RouterInputError(
                    f"load balancer {self.name}: {where}: unknown group {group!r}"
                )
        if len({r.priority for r in self.rules}) != len(self.rules):
            raise RouterInputError(f"load balancer {self.name}: two rules share a priority")
        if self.scheme not in ("internet-facing", "internal"):
            raise RouterInputError(f"load balancer {self.name}: scheme {self.scheme!r}")
        if self.listener_protocol != "HTTP":
            # HTTPS needs certificates; a later issue.
            raise RouterInputError(f"listener protocol {self.listener_protocol!r}: only HTTP")


@dataclass(frozen=True)
class LoadBalancerHandles:
    """ARNs of what :func:`ensure_load_balancer` ensured; feed them to the router."""

    load_balancer_arn: str
    listener_arn: str
    target_groups: Mapping[str, str]
    rules: Mapping[int, str]
    changed: tuple[str, ...]


def _check_name(where: str, name: str) -> None:
    ok = 1 <= len(name) <= 32 and all(c.isalnum() or c == "-" for c in name)
    if not ok or name.startswith("-") or name.endswith("-"):
        raise RouterInputError(f"{where}: name {name!r}: 1-32 letters, digits, inner hyphens")


def _tags(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {MANAGED_TAG: "true", **base, **extra}


def ensure_load_balancer(
    client: ElasticLoadBalancingv2Client, spec: LoadBalancerSpec, *, dry_run: bool = False
) -> LoadBalancerHandles:
    """Create what is missing, fix tags and health checks, touch nothing that matches.

    With ``dry_run`` only Describe calls are made and ``changed`` lists what a
    real run would do (ARNs of things not yet created are empty strings).
    """
    c: Any = client  # the stubs' TypedDicts do not fit dicts built at runtime
    changed: list[str] = []

    def write(what: str, fn: Any, **kwargs: Any) -> Any:
        changed.append(what)
        return None if dry_run else call(fn, **kwargs)

    # Load balancer.
    try:
        lbs = call(c.describe_load_balancers, Names=[spec.name])["LoadBalancers"]
    except Exception as exc:
        if error_code(exc) != "LoadBalancerNotFound":
            raise
        lbs = []
    if lbs:
        lb = lbs[0]
        if lb.get("Type", "application") != "application" or lb.get("Scheme") != spec.scheme:
            raise ProvisionError(
                f"load balancer {spec.name}: exists as {lb.get('Type')}/{lb.get('Scheme')}, "
                f"spec wants application/{spec.scheme}; cdlib will not replace it"
            )
    else:
        kwargs: dict[str, Any] = {
            "Name": spec.name,
            "Subnets": list(spec.subnets),
            "Scheme": spec.scheme,
            "Type": "application",
            "Tags": tag_list(_tags(spec.tags)),
        }
        if spec.security_groups:
            kwargs["SecurityGroups"] = list(spec.security_groups)
        out = write(f"created load balancer {spec.name}", c.create_load_balancer, **kwargs)
        lb = out["LoadBalancers"][0] if out else {"LoadBalancerArn": ""}
    lb_arn = str(lb["LoadBalancerArn"])

    # Target groups.
    tg_arns: dict[str, str] = {}
    for tg in spec.target_groups:
        try:
            found = call(c.describe_target_groups, Names=[tg.name])["TargetGroups"]
        except Exception as exc:
            if error_code(exc) != "TargetGroupNotFound":
                raise
            found = []
        if found:
            cur = found[0]
            for key, want in (
                ("Protocol", tg.protocol),
                ("Port", tg.port),
                ("VpcId", spec.vpc_id),
                ("TargetType", tg.target_type),
            ):
                if cur.get(key) != want:
                    raise ProvisionError(
                        f"target group {tg.name}: {key} is {cur.get(key)!r}, spec wants "
                        f"{want!r}; it cannot be changed in place"
                    )
            if cur.get("HealthCheckPath") != tg.health_check_path:
                write(
                    f"target group {tg.name}: health check path",
                    c.modify_target_group,
                    TargetGroupArn=cur["TargetGroupArn"],
                    HealthCheckPath=tg.health_check_path,
                )
        else:
            out = write(
                f"created target group {tg.name}",
                c.create_target_group,
                Name=tg.name,
                Protocol=tg.protocol,
                Port=tg.port,
                VpcId=spec.vpc_id,
                TargetType=tg.target_type,
                HealthCheckPath=tg.health_check_path,
                Tags=tag_list(_tags(spec.tags, **{GROUP_TAG: tg.group})),
            )
            cur = out["TargetGroups"][0] if out else {"TargetGroupArn": ""}
        tg_arns[tg.group] = str(cur["TargetGroupArn"])

    if not lb_arn:
        # Dry run of a new load balancer: everything below would be created too.
        changed.append(f"created listener :{spec.listener_port}")
        changed += [f"created rule {r.priority}" for r in spec.rules]
        return LoadBalancerHandles("", "", tg_arns, {}, tuple(changed))

    # Tags: one read for everything, writes only where a tag is missing or differs.
    wanted_tags = {lb_arn: _tags(spec.tags)}
    for tg in spec.target_groups:
        wanted_tags[tg_arns[tg.group]] = _tags(spec.tags, **{GROUP_TAG: tg.group})
    existing = [arn for arn in wanted_tags if arn]
    descs = call(c.describe_tags, ResourceArns=existing)["TagDescriptions"]
    have = {
        d["ResourceArn"]: {t["Key"]: t.get("Value", "") for t in d.get("Tags", [])} for d in descs
    }
    for arn, want_tags in wanted_tags.items():
        diff = {k: v for k, v in want_tags.items() if have.get(arn, {}).get(k) != v}
        if diff and arn:
            write(
                f"tags on {arn.rsplit(':', 1)[1]}: {', '.join(sorted(diff))}",
                c.add_tags,
                ResourceArns=[arn],
                Tags=tag_list(diff),
            )

    # Listener: created forwarding to the default group; an existing one keeps its action.
    listeners = call(c.describe_listeners, LoadBalancerArn=lb_arn)["Listeners"]
    listener = next((li for li in listeners if li["Port"] == spec.listener_port), None)
    if listener is None:
        out = write(
            f"created listener :{spec.listener_port}",
            c.create_listener,
            LoadBalancerArn=lb_arn,
            Protocol=spec.listener_protocol,
            Port=spec.listener_port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arns[spec.default_group]}],
            Tags=tag_list(_tags(spec.tags)),
        )
        if out is None:
            changed += [f"created rule {r.priority}" for r in spec.rules]
            return LoadBalancerHandles(lb_arn, "", tg_arns, {}, tuple(changed))
        listener = out["Listeners"][0]
    elif listener.get("Protocol") != spec.listener_protocol:
        raise ProvisionError(
            f"listener :{spec.listener_port} speaks {listener.get('Protocol')}, "
            f"spec wants {spec.listener_protocol}"
        )
    listener_arn = str(listener["ListenerArn"])

    # Rules, matched by priority; conditions are fixed in place, actions left to the router.
    rules = call(c.describe_rules, ListenerArn=listener_arn)["Rules"]
    by_priority = {r["Priority"]: r for r in rules if r.get("Priority") != "default"}
    rule_arns: dict[int, str] = {}
    for rule in spec.rules:
        cur_rule = by_priority.get(str(rule.priority))
        if cur_rule is None:
            out = write(
                f"created rule {rule.priority}",
                c.create_rule,
                ListenerArn=listener_arn,
                Priority=rule.priority,
                Conditions=rule.conditions(),
                Actions=[{"Type": "forward", "TargetGroupArn": tg_arns[rule.group]}],
                Tags=tag_list(_tags(spec.tags)),
            )
            cur_rule = out["Rules"][0] if out else {"RuleArn": ""}
        elif _conditions(cur_rule) != rule.conditions():
            write(
                f"rule {rule.priority}: conditions",
                c.modify_rule,
                RuleArn=cur_rule["RuleArn"],
                Conditions=rule.conditions(),
            )
        rule_arns[rule.priority] = str(cur_rule["RuleArn"])

    return LoadBalancerHandles(lb_arn, listener_arn, tg_arns, rule_arns, tuple(changed))


def _conditions(rule: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A rule's conditions in the spec's normalised shape."""
    out = []
    for cond in rule.get("Conditions", []):
        field_name = cond["Field"]
        values = cond.get("Values")
        if not values:
            key = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig"}.get(
                field_name
            )
            values = cond.get(key, {}).get("Values", []) if key else []
        out.append({"Field": field_name, "Values": sorted(values)})
    return sorted(out, key=lambda d: str(d["Field"]))


__all__ = [
    "GROUP_TAG",
    "MANAGED_TAG",
    "LoadBalancerHandles",
    "LoadBalancerSpec",
    "ProvisionError",
    "RuleSpec",
    "TargetGroupSpec",
    "ensure_load_balancer",
]
