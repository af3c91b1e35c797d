"""Specs, pure readers and pure decisions for EC2 and Auto Scaling provisioning.

Nothing here talks to AWS: readers turn Describe responses into small state objects,
decisions compare a state with a spec and list the changes. :mod:`cdlib.aws.provision`
applies them, and check mode (a dry run) shares every line of this module.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cdlib.traffic.aws_api import MANAGED_TAG, tag_list

#: AWS limit on raw user data.
MAX_USER_DATA = 16 * 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ComputeError(Exception):
    """Base class of the errors below; the message names the AWS resource."""


class ComputeInputError(ComputeError, ValueError):
    """A spec is invalid before AWS is asked anything."""


class MissingResourceError(ComputeError):
    """A resource the spec refers to (AMI, subnet, target group ...) does not exist."""


class ConflictError(ComputeError):
    """What exists conflicts with the spec in a way cdlib will not change in place."""


class NotInServiceError(ComputeError):
    """An Auto Scaling group did not reach its capacity of healthy instances in time."""


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ComputeInputError(
            f"{what} name {name!r}: 1-128 letters, digits, '.', '_' or '-', starting plain"
        )


def _check_tags(what: str, tags: Mapping[str, str]) -> None:
    for k, v in tags.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k or k.startswith("aws:"):
            raise ComputeInputError(
                f"{what}: tag {k!r}={v!r}: keys and values are strings, no aws:"
            )


def managed_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` plus the cdlib marker tag."""
    return {MANAGED_TAG: "true", **tags}


# -- security group ---------------------------------------------------------------


@dataclass(frozen=True)
class IngressRule:
    """One inbound rule: ``port`` (to ``to_port``) from a CIDR or another security group.

    ``source_group`` is a security group id (``sg-...``) or the name of a group in the
    same VPC (for example the load balancer's).
    """

    port: int
    cidr: str | None = None
    source_group: str | None = None
    to_port: int | None = None
    protocol: str = "tcp"

    def __post_init__(self) -> None:
        last = self.to_port if self.to_port is not None else self.port
        if not 0 <= self.port <= last <= 65535:
            raise ComputeInputError(f"ingress rule: ports {self.port}..{last} not in 0..65535")
        if self.protocol not in ("tcp", "udp"):
            raise ComputeInputError(f"ingress rule: protocol {self.protocol!r} is not tcp or udp")
        if (self.cidr is None) == (self.source_group is None):
            raise ComputeInputError("ingress rule: give exactly one of cidr or source_group")
        if self.cidr is not None:
            try:
                ipaddress.IPv4Network(self.cidr)
            except ValueError as exc:
                raise ComputeInputError(f"ingress rule: cidr {self.cidr!r}: {exc}") from None

    def key(self, group_ids: Mapping[str, str]) -> tuple[str, int, int, str]:
        """Canonical form: (protocol, from, to, ``cidr:...`` or ``sg:<id or name>``)."""
        last = self.to_port if self.to_port is not None else self.port
        if self.cidr is not None:
            source = f"cidr:{self.cidr}"
        else:
            assert self.source_group is not None
            source = f"sg:{group_ids.get(self.source_group, self.source_group)}"
        return (self.protocol, self.port, last, source)


@dataclass(frozen=True)
class SecurityGroupSpec:
    """A security group in ``vpc_id`` with exactly these inbound rules (egress: AWS default)."""

    name: str
    vpc_id: str
    description: str
    ingress: tuple[IngressRule, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("security group", self.name)
        if self.name.startswith("sg-"):
            raise ComputeInputError(f"security group name {self.name!r} may not start with sg-")
        if not self.description or len(self.description) > 255:
            raise ComputeInputError(f"security group {self.name}: description of 1-255 chars")
        _check_tags(f"security group {self.name}", self.tags)


@dataclass(frozen=True)
class SecurityGroupState:
    """What :func:`read_security_group` found."""

    group_id: str
    description: str
    rules: frozenset[tuple[str, int, int, str]]
    tags: Mapping[str, str]


def read_security_group(response: Mapping[str, Any]) -> SecurityGroupState | None:
    """Parse ``DescribeSecurityGroups`` (filtered by name and VPC); None when absent."""
    groups = response.get("SecurityGroups", [])
    if not groups:
        return None
    g = groups[0]
    rules: set[tuple[str, int, int, str]] = set()
    for perm in g.get("IpPermissions", []):
        proto = str(perm.get("IpProtocol", ""))
        lo, hi = int(perm.get("FromPort", -1)), int(perm.get("ToPort", -1))
        for r in perm.get("IpRanges", []):
            rules.add((proto, lo, hi, f"cidr:{r['CidrIp']}"))
        for p in perm.get("UserIdGroupPairs", []):
            rules.add((proto, lo, hi, f"sg:{p['GroupId']}"))
        for r in perm.get("Ipv6Ranges", []):
            rules.add((proto, lo, hi, f"cidr6:{r['CidrIpv6']}"))
    tags = {t["Key"]: t.get("Value", "") for t in g.get("Tags", [])}
    return SecurityGroupState(
        str(g["GroupId"]), str(g.get("Description", "")), frozenset(rules), tags
    )


@dataclass(frozen=True)
class SecurityGroupChanges:
    """What :func:`decide_security_group` wants done."""

    create: bool
    authorize: tuple[tuple[str, int, int, str], ...]
    revoke: tuple[tuple[str, int, int, str], ...]
    tags: Mapping[str, str]

    def describe(self, name: str) -> list[str]:
        """One line per change, for the task's result."""
        out = [f"create security group {name}"] if self.create else []
        out += [f"{name}: allow {_rule_text(r)}" for r in self.authorize]
        out += [f"{name}: revoke {_rule_text(r)}" for r in self.revoke]
        if self.tags and not self.create:
            out.append(f"{name}: tags {', '.join(sorted(self.tags))}")
        return out


def _rule_text(rule: tuple[str, int, int, str]) -> str:
    proto, lo, hi, source = rule
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{proto}/{ports} from {source.split(':', 1)[1]}"


def decide_security_group(
    spec: SecurityGroupSpec, state: SecurityGroupState | None, group_ids: Mapping[str, str]
) -> SecurityGroupChanges:
    """Rules to add and to revoke (rules not in the spec go: the group is cdlib's)."""
    want = {r.key(group_ids) for r in spec.ingress}
    tags = managed_tags(spec.tags)
    if state is None:
        return SecurityGroupChanges(True, tuple(sorted(want)), (), tags)
    if state.description != spec.description:
        raise ConflictError(
            f"security group {spec.name} ({state.group_id}): description is "
            f"{state.description!r}, spec wants {spec.description!r}; AWS cannot change it "
            "in place"
        )
    missing = {k: v for k, v in tags.items() if state.tags.get(k) != v}
    return SecurityGroupChanges(
        False,
        tuple(sorted(want - state.rules)),
        tuple(sorted(state.rules - want)),
        missing,
    )


def ip_permission(rule: tuple[str, int, int, str]) -> dict[str, Any]:
    """The API's ``IpPermissions`` entry for a canonical rule."""
    proto, lo, hi, source = rule
    kind, value = source.split(":", 1)
    perm: dict[str, Any] = {"IpProtocol": proto, "FromPort": lo, "ToPort": hi}
    if kind == "cidr":
        perm["IpRanges"] = [{"CidrIp": value}]
    elif kind == "cidr6":
        perm["Ipv6Ranges"] = [{"CidrIpv6": value}]
    else:
        perm["UserIdGroupPairs"] = [{"GroupId": value}]
    return perm


# -- launch template ---------------------------------------------------------------


@dataclass(frozen=True)
class LaunchTemplateSpec:
    """A launch template; a new version is made only when this content changes.

    ``security_groups`` are ids (``sg-...``) or names of groups in ``vpc_id``;
    ``user_data`` is the rendered text (the task renders it from a jinja2 template);
    ``tags`` go on the template and on the instances launched from it.
    """

    name: str
    image_id: str
    instance_type: str
    user_data: str = ""
    security_groups: tuple[str, ...] = ()
    vpc_id: str | None = None
    iam_instance_profile: str | None = None
    key_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("launch template", self.name)
        if not re.match(r"^ami-[0-9a-f]{8,17}$", self.image_id):
            raise ComputeInputError(f"launch template {self.name}: {self.image_id!r} is no AMI id")
        if not re.match(r"^[a-z0-9-]+\.[a-z0-9-]+$", self.instance_type):
            raise ComputeInputError(
                f"launch template {self.name}: instance type {self.instance_type!r}"
            )
        if len(self.user_data.encode()) > MAX_USER_DATA:
            raise ComputeInputError(
                f"launch template {self.name}: user data is over {MAX_USER_DATA} bytes"
            )
        if any(not g.startswith("sg-") for g in self.security_groups) and not self.vpc_id:
            raise ComputeInputError(
                f"launch template {self.name}: security groups by name need vpc_id"
            )
        _check_tags(f"launch template {self.name}", self.tags)

    def data(self, group_ids: Mapping[str, str]) -> dict[str, Any]:
        """The ``LaunchTemplateData`` in canonical form (unresolved names kept as names)."""
        out: dict[str, Any] = {"ImageId": self.image_id, "InstanceType": self.instance_type}
        if self.user_data:
            out["UserData"] = base64.b64encode(self.user_data.encode()).decode()
        if self.security_groups:
            out["SecurityGroupIds"] = sorted(group_ids.get(g, g) for g in self.security_groups)
        if self.iam_instance_profile:
            out["IamInstanceProfile"] = {"Name": self.iam_instance_profile}
        if self.key_name:
            out["KeyName"] = self.key_name
        tags = tag_list(managed_tags(self.tags))
        out["TagSpecifications"] = [{"ResourceType": "instance", "Tags": tags}]
        return out


@dataclass(frozen=True)
class LaunchTemplateState:
    """The template's id, latest and default version numbers and the latest's data."""

    template_id: str
    latest: int
    default: int
    data: Mapping[str, Any]


def canonical_template_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the keys cdlib manages, sorted, so two versions compare equal when alike."""
    out: dict[str, Any] = {}
    for key in ("ImageId", "InstanceType", "UserData", "KeyName"):
        if data.get(key):
            out[key] = data[key]
    if data.get("SecurityGroupIds"):
        out["SecurityGroupIds"] = sorted(data["SecurityGroupIds"])
    profile = data.get("IamInstanceProfile") or {}
    if profile.get("Name"):
        out["IamInstanceProfile"] = {"Name": profile["Name"]}
    specs = [
        {
            "ResourceType": s["ResourceType"],
            "Tags": sorted(
                ({"Key": t["Key"], "Value": t.get("Value", "")} for t in s.get("Tags", [])),
                key=lambda t: t["Key"],
            ),
        }
        for s in data.get("TagSpecifications", [])
        # Tags of the template itself are not version content.
        if s.get("ResourceType") in ("instance", "volume")
    ]
    if specs:
        out["TagSpecifications"] = sorted(specs, key=lambda s: str(s["ResourceType"]))
    return out


def read_launch_template(
    templates: Mapping[str, Any], versions: Mapping[str, Any]
) -> LaunchTemplateState | None:
    """Parse ``DescribeLaunchTemplates`` and ``DescribeLaunchTemplateVersions`` ($Latest)."""
    found = templates.get("LaunchTemplates", [])
    if not found:
        return None
    t = found[0]
    latest = versions.get("LaunchTemplateVersions", [])
    data = latest[0].get("LaunchTemplateData", {}) if latest else {}
    return LaunchTemplateState(
        str(t["LaunchTemplateId"]),
        int(t["LatestVersionNumber"]),
        int(t["DefaultVersionNumber"]),
        canonical_template_data(data),
    )


def decide_launch_template(
    spec: LaunchTemplateSpec, state: LaunchTemplateState | None, group_ids: Mapping[str, str]
) -> list[str]:
    """``[]`` when the latest version already holds the spec; else what differs."""
    want = canonical_template_data(spec.data(group_ids))
    if state is None:
        return [f"create launch template {spec.name} (version 1)"]
    changed = sorted(k for k in set(want) | set(state.data) if want.get(k) != state.data.get(k))
    out = []
    if changed:
        out.append(
            f"launch template {spec.name}: version {state.latest + 1} ({', '.join(changed)})"
        )
    elif state.default != state.latest:
        out.append(f"launch template {spec.name}: default version {state.latest}")
    return out


# -- Auto Scaling group ------------------------------------------------------------


@dataclass(frozen=True)
class AutoScalingGroupSpec:
    """An Auto Scaling group launching ``launch_template`` into ``subnets``.

    ``desired`` (default: ``min_size``) is set when the group is created; afterwards the
    group's size belongs to releases and scaling, and a re-run only moves it back inside
    ``min_size..max_size``. Likewise the launch template *version* is pinned at creation
    and afterwards changed by releases only. ``target_groups`` are target group names.
    """

    name: str
    launch_template: str
    subnets: tuple[str, ...]
    min_size: int
    max_size: int
    desired: int | None = None
    target_groups: tuple[str, ...] = ()
    health_check_type: str = "ELB"
    health_check_grace_period: int = 300
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("Auto Scaling group", self.name)
        _check_name("launch template", self.launch_template)
        if not self.subnets:
            raise ComputeInputError(f"Auto Scaling group {self.name}: no subnets")
        if not 0 <= self.min_size <= self.max_size:
            raise ComputeInputError(
                f"Auto Scaling group {self.name}: sizes need 0 <= min_size <= max_size, "
                f"got {self.min_size}..{self.max_size}"
            )
        if self.desired is not None and not self.min_size <= self.desired <= self.max_size:
            raise ComputeInputError(
                f"Auto Scaling group {self.name}: desired {self.desired} is not in "
                f"{self.min_size}..{self.max_size}"
            )
        if self.health_check_type not in ("ELB", "EC2"):
            raise ComputeInputError(
                f"Auto Scaling group {self.name}: health_check_type "
                f"{self.health_check_type!r} is not ELB or EC2"
            )
        if self.health_check_type == "ELB" and not self.target_groups:
            raise ComputeInputError(
                f"Auto Scaling group {self.name}: health check type ELB needs target_groups"
            )
        if self.health_check_grace_period < 0:
            raise ComputeInputError(f"Auto Scaling group {self.name}: negative grace period")
        _check_tags(f"Auto Scaling group {self.name}", self.tags)

    @property
    def initial_desired(self) -> int:
        """The capacity a new group starts with."""
        return self.min_size if self.desired is None else self.desired


@dataclass(frozen=True)
class GroupInstance:
    """One instance of a group as the group reports it."""

    instance_id: str
    lifecycle: str
    health: str


@dataclass(frozen=True)
class AutoScalingGroupState:
    """What :func:`read_auto_scaling_group` found."""

    min_size: int
    max_size: int
    desired: int
    subnets: frozenset[str]
    health_check_type: str
    health_check_grace_period: int
    target_group_arns: frozenset[str]
    launch_template: str
    launch_template_version: str
    tags: Mapping[str, str]
    instances: tuple[GroupInstance, ...]


def read_auto_scaling_group(response: Mapping[str, Any]) -> AutoScalingGroupState | None:
    """Parse ``DescribeAutoScalingGroups`` for one name; None when absent."""
    groups = response.get("AutoScalingGroups", [])
    if not groups:
        return None
    g = groups[0]
    lt = g.get("LaunchTemplate") or {}
    return AutoScalingGroupState(
        int(g["MinSize"]),
        int(g["MaxSize"]),
        int(g["DesiredCapacity"]),
        frozenset(s for s in str(g.get("VPCZoneIdentifier", "")).split(",") if s),
        str(g.get("HealthCheckType", "EC2")),
        int(g.get("HealthCheckGracePeriod", 0)),
        frozenset(g.get("TargetGroupARNs", [])),
        str(lt.get("LaunchTemplateName", "")),
        str(lt.get("Version", "")),
        {t["Key"]: t.get("Value", "") for t in g.get("Tags", [])},
        tuple(
            GroupInstance(
                str(i["InstanceId"]), str(i.get("LifecycleState", "")), str(i.get("HealthStatus"))
            )
            for i in g.get("Instances", [])
        ),
    )


@dataclass(frozen=True)
class AutoScalingGroupChanges:
    """What :func:`decide_auto_scaling_group` wants done to an existing group."""

    update: Mapping[str, Any]
    attach: tuple[str, ...]
    detach: tuple[str, ...]
    tags: Mapping[str, str]

    def describe(self, name: str, arn_names: Mapping[str, str]) -> list[str]:
        """One line per change."""
        out = [f"{name}: {k} -> {v}" for k, v in sorted(self.update.items())]
        out += [f"{name}: attach target group {arn_names.get(a, a)}" for a in self.attach]
        out += [f"{name}: detach target group {arn_names.get(a, a)}" for a in self.detach]
        if self.tags:
            out.append(f"{name}: tags {', '.join(sorted(self.tags))}")
        return out

    @property
    def empty(self) -> bool:
        """Nothing to change."""
        return not (self.update or self.attach or self.detach or self.tags)


def decide_auto_scaling_group(
    spec: AutoScalingGroupSpec, state: AutoScalingGroupState, target_group_arns: Mapping[str, str]
) -> AutoScalingGroupChanges:
    """Compare an existing group with the spec (desired size and template version excluded)."""
    if state.launch_template != spec.launch_template:
        raise ConflictError(
            f"Auto Scaling group {spec.name}: launches from template "
            f"{state.launch_template or '(none)'!r}, spec wants {spec.launch_template!r}; "
            "cdlib will not switch it"
        )
    update: dict[str, Any] = {}
    if state.min_size != spec.min_size:
        update["MinSize"] = spec.min_size
    if state.max_size != spec.max_size:
        update["MaxSize"] = spec.max_size
    clamped = min(max(state.desired, spec.min_size), spec.max_size)
    if clamped != state.desired:
        update["DesiredCapacity"] = clamped
    if state.subnets != frozenset(spec.subnets):
        update["VPCZoneIdentifier"] = ",".join(spec.subnets)
    if state.health_check_type != spec.health_check_type:
        update["HealthCheckType"] = spec.health_check_type
    if state.health_check_grace_period != spec.health_check_grace_period:
        update["HealthCheckGracePeriod"] = spec.health_check_grace_period
    want_arns = {target_group_arns[n] for n in spec.target_groups}
    tags = managed_tags(spec.tags)
    return AutoScalingGroupChanges(
        update,
        tuple(sorted(want_arns - state.target_group_arns)),
        tuple(sorted(state.target_group_arns - want_arns)),
        {k: v for k, v in tags.items() if state.tags.get(k) != v},
    )


def read_target_health(response: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Parse ``DescribeTargetHealth``: target id -> (state, reason)."""
    out: dict[str, tuple[str, str]] = {}
    for d in response.get("TargetHealthDescriptions", []):
        th = d.get("TargetHealth", {})
        out[str(d["Target"]["Id"])] = (str(th.get("State", "")), str(th.get("Reason", "")))
    return out


def departed_targets(
    members: set[str], registered: Mapping[str, tuple[str, str]], gone: set[str]
) -> list[str]:
    """Registered instance targets that left the group and no longer run (``gone``).

    Targets of other owners (running instances not in the group) are left alone.
    """
    return sorted(t for t in registered if t not in members and t in gone)


@dataclass(frozen=True)
class Readiness:
    """How many of a group's instances are in service and healthy everywhere."""

    wanted: int
    ready: tuple[str, ...]
    not_ready: Mapping[str, str]

    @property
    def done(self) -> bool:
        """At least ``wanted`` instances are ready."""
        return len(self.ready) >= self.wanted

    def report(self, name: str) -> str:
        """``web-blue: 1 of 2 instances ready; not ready: i-1 (Pending)``."""
        text = f"{name}: {len(self.ready)} of {self.wanted} instances ready"
        if self.not_ready:
            text += "; not ready: " + ", ".join(
                f"{i} ({why})" for i, why in sorted(self.not_ready.items())
            )
        return text


def readiness(
    state: AutoScalingGroupState, health: Mapping[str, Mapping[str, tuple[str, str]]]
) -> Readiness:
    """Which instances are InService, Healthy and healthy in every target group.

    ``health`` maps each attached target group's name to :func:`read_target_health`.
    Health is taken as reported; membership comes from the group, never the target group.
    """
    ready: list[str] = []
    not_ready: dict[str, str] = {}
    for inst in state.instances:
        if inst.lifecycle.startswith("Terminat") or inst.lifecycle.startswith("Detach"):
            continue
        reasons = []
        if inst.lifecycle != "InService":
            reasons.append(inst.lifecycle)
        elif inst.health != "Healthy":
            reasons.append(f"group health {inst.health}")
        for tg, targets in sorted(health.items()):
            st, why = targets.get(inst.instance_id, ("unregistered", ""))
            if st != "healthy":
                reasons.append(f"{st} in {tg}" + (f": {why}" if why else ""))
        if reasons:
            not_ready[inst.instance_id] = "; ".join(reasons)
        else:
            ready.append(inst.instance_id)
    return Readiness(state.desired, tuple(ready), not_ready)


__all__ = [
    "MANAGED_TAG",
    "AutoScalingGroupChanges",
    "AutoScalingGroupSpec",
    "AutoScalingGroupState",
    "ComputeError",
    "ComputeInputError",
    "ConflictError",
    "GroupInstance",
    "IngressRule",
    "LaunchTemplateSpec",
    "LaunchTemplateState",
    "MissingResourceError",
    "NotInServiceError",
    "Readiness",
    "SecurityGroupChanges",
    "SecurityGroupSpec",
    "SecurityGroupState",
    "canonical_template_data",
    "decide_auto_scaling_group",
    "decide_launch_template",
    "decide_security_group",
    "departed_targets",
    "ip_permission",
    "managed_tags",
    "read_auto_scaling_group",
    "read_launch_template",
    "read_security_group",
    "read_target_health",
    "readiness",
]
