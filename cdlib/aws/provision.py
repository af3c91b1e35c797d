"""Ensure security groups, launch templates and Auto Scaling groups exist as specified.

Each ``ensure_*`` function reads (Describe calls), decides (:mod:`cdlib.aws.compute`) and,
unless ``dry_run``, applies. Everything a spec refers to (AMI, instance type, subnets,
target groups, the launch template) is checked before the first write, so bad input
leaves nothing half-made; and every step is idempotent, so a run that failed half-way
(throttling, a lost connection) converges when re-run. A converged resource costs no
write call.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cdlib.aws.compute import (
    AutoScalingGroupSpec,
    AutoScalingGroupState,
    ComputeError,
    LaunchTemplateSpec,
    MissingResourceError,
    NotInServiceError,
    Readiness,
    SecurityGroupSpec,
    canonical_template_data,
    decide_auto_scaling_group,
    decide_launch_template,
    decide_security_group,
    departed_targets,
    ip_permission,
    managed_tags,
    read_auto_scaling_group,
    read_launch_template,
    read_security_group,
    read_target_health,
    readiness,
)
from cdlib.traffic.aws_api import call, error_code, tag_list

_DENIED = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"}
)


def client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> Any:
    """A boto3 client for ``service`` (boto3 is imported here, lazily)."""
    import boto3

    session = boto3.session.Session(region_name=region, profile_name=profile)
    return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def aws_call(what: str, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call AWS (retrying while throttled); failures become a :class:`ComputeError`
    naming ``what`` (the resource) and the AWS error code."""
    try:
        return call(fn, **kwargs)
    except Exception as exc:
        code = error_code(exc)
        if not code:
            raise
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
        op = getattr(exc, "operation_name", fn.__name__)
        if code in _DENIED:
            raise ComputeError(f"{what}: permission denied for {op} ({code}): {message}") from None
        raise ComputeError(f"{what}: AWS refused {op} ({code}): {message}") from None


def _code_of(fn: Callable[..., Any], **kwargs: Any) -> tuple[Any, str]:
    """(response, "") or (None, error code) for reads where 'not found' is an answer."""
    try:
        return call(fn, **kwargs), ""
    except Exception as exc:
        code = error_code(exc)
        if not code or code in _DENIED:
            if code:
                raise ComputeError(f"permission denied for {fn.__name__} ({code})") from None
            raise
        return None, code


def _asg_tags(name: str, tags: Mapping[str, str]) -> list[dict[str, object]]:
    """Tags of Auto Scaling group ``name``, passed on to the instances it launches."""
    return [
        {
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
            "Key": k,
            "Value": v,
            "PropagateAtLaunch": True,
        }
        for k, v in sorted(tags.items())
    ]


def security_group_ids(ec2: Any, vpc_id: str, names: list[str], *, what: str) -> dict[str, str]:
    """Ids of the named security groups in ``vpc_id`` (names not found are left out)."""
    plain = sorted({n for n in names if not n.startswith("sg-")})
    if not plain:
        return {}
    out = aws_call(
        what,
        ec2.describe_security_groups,
        Filters=[
            {"Name": "group-name", "Values": plain},
            {"Name": "vpc-id", "Values": [vpc_id]},
        ],
    )
    return {str(g["GroupName"]): str(g["GroupId"]) for g in out.get("SecurityGroups", [])}


# -- security group ---------------------------------------------------------------


@dataclass(frozen=True)
class SecurityGroupResult:
    """What :func:`ensure_security_group` did (or would do): the id ("" if not yet made)."""

    group_id: str
    changes: tuple[str, ...]


def ensure_security_group(
    ec2: Any, spec: SecurityGroupSpec, *, dry_run: bool = False
) -> SecurityGroupResult:
    """Create the group, then add and revoke rules until they match the spec exactly."""
    what = f"security group {spec.name}"
    resp = aws_call(
        what,
        ec2.describe_security_groups,
        Filters=[
            {"Name": "group-name", "Values": [spec.name]},
            {"Name": "vpc-id", "Values": [spec.vpc_id]},
        ],
    )
    state = read_security_group(resp)
    sources = [r.source_group for r in spec.ingress if r.source_group]
    ids = security_group_ids(ec2, spec.vpc_id, [s for s in sources if s != spec.name], what=what)
    if state is not None:
        ids[spec.name] = state.group_id
    missing = sorted({s for s in sources if not s.startswith("sg-") and s not in ids} - {spec.name})
    if missing and not dry_run:
        raise MissingResourceError(
            f"{what}: source security group {', '.join(missing)} not found in {spec.vpc_id}"
        )
    changes = decide_security_group(spec, state, ids)
    lines = tuple(changes.describe(spec.name))
    if dry_run or not lines:
        return SecurityGroupResult(state.group_id if state else "", lines)
    if state is None:
        out = aws_call(
            what,
            ec2.create_security_group,
            GroupName=spec.name,
            Description=spec.description,
            VpcId=spec.vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(changes.tags)}],
        )
        group_id = str(out["GroupId"])
        # A rule naming the group itself can be resolved only now.
        ids[spec.name] = group_id
        changes = decide_security_group(
            spec, read_security_group({"SecurityGroups": [_empty_group(spec, group_id)]}), ids
        )
    else:
        group_id = state.group_id
        if changes.tags:
            aws_call(what, ec2.create_tags, Resources=[group_id], Tags=tag_list(changes.tags))
    if changes.authorize:
        aws_call(
            what,
            ec2.authorize_security_group_ingress,
            GroupId=group_id,
            IpPermissions=[ip_permission(r) for r in changes.authorize],
        )
    if changes.revoke:
        aws_call(
            what,
            ec2.revoke_security_group_ingress,
            GroupId=group_id,
            IpPermissions=[ip_permission(r) for r in changes.revoke],
        )
    return SecurityGroupResult(group_id, lines)


def _empty_group(spec: SecurityGroupSpec, group_id: str) -> dict[str, Any]:
    tags = managed_tags(spec.tags)
    return {"GroupId": group_id, "Description": spec.description, "Tags": tag_list(tags)}


# -- launch template ---------------------------------------------------------------


@dataclass(frozen=True)
class LaunchTemplateResult:
    """The template's version holding the spec (predicted in a dry run) and the changes.

    ``version`` is what a release records: the number of the version whose content is the
    spec. ``user_data_before`` is the latest version's user data (for ``--diff``).
    """

    template_id: str
    version: int
    changes: tuple[str, ...]
    user_data_before: str | None = None


def _check_image_and_type(ec2: Any, spec: LaunchTemplateSpec) -> None:
    what = f"launch template {spec.name}"
    images, code = _code_of(ec2.describe_images, ImageIds=[spec.image_id])
    if code or not images.get("Images"):
        raise MissingResourceError(f"{what}: AMI {spec.image_id} not found ({code or 'none'})")
    types, code = _code_of(ec2.describe_instance_types, InstanceTypes=[spec.instance_type])
    if code or not types.get("InstanceTypes"):
        raise ComputeError(
            f"{what}: instance type {spec.instance_type} refused by AWS ({code or 'unknown'})"
        )


def read_template(ec2: Any, name: str) -> tuple[Any, Any]:
    """The Describe responses :func:`~cdlib.aws.compute.read_launch_template` parses."""
    templates, code = _code_of(ec2.describe_launch_templates, LaunchTemplateNames=[name])
    if code:
        if "NotFound" not in code:
            raise ComputeError(f"launch template {name}: DescribeLaunchTemplates ({code})")
        return {"LaunchTemplates": []}, {}
    versions = aws_call(
        f"launch template {name}",
        ec2.describe_launch_template_versions,
        LaunchTemplateName=name,
        Versions=["$Latest"],
    )
    return templates, versions


def ensure_launch_template(
    ec2: Any, spec: LaunchTemplateSpec, *, dry_run: bool = False
) -> LaunchTemplateResult:
    """Create the template, or a new (default) version only when its content changed."""
    what = f"launch template {spec.name}"
    _check_image_and_type(ec2, spec)
    ids: dict[str, str] = {}
    if spec.vpc_id:
        ids = security_group_ids(ec2, spec.vpc_id, list(spec.security_groups), what=what)
    missing = [g for g in spec.security_groups if not g.startswith("sg-") and g not in ids]
    if missing and not dry_run:
        raise MissingResourceError(
            f"{what}: security group {', '.join(missing)} not found in {spec.vpc_id}"
        )
    state = read_launch_template(*read_template(ec2, spec.name))
    before = None
    if state is not None and state.data.get("UserData"):
        before = base64.b64decode(str(state.data["UserData"])).decode("utf-8", "replace")
    changes = tuple(decide_launch_template(spec, state, ids))
    data = spec.data(ids)
    if state is None:
        version, template_id = 1, ""
    elif canonical_template_data(data) != state.data:  # a new version, as decided above
        version, template_id = state.latest + 1, state.template_id
    else:
        version, template_id = state.latest, state.template_id
    if dry_run or not changes:
        return LaunchTemplateResult(template_id, version, changes, before)
    if state is None:
        out = aws_call(
            what,
            ec2.create_launch_template,
            LaunchTemplateName=spec.name,
            LaunchTemplateData=data,
            TagSpecifications=[
                {"ResourceType": "launch-template", "Tags": tag_list(managed_tags(spec.tags))}
            ],
        )
        tpl = out["LaunchTemplate"]
        return LaunchTemplateResult(
            str(tpl["LaunchTemplateId"]), int(tpl["LatestVersionNumber"]), changes, before
        )
    if version != state.latest:
        out = aws_call(
            what,
            ec2.create_launch_template_version,
            LaunchTemplateName=spec.name,
            LaunchTemplateData=data,
        )
        version = int(out["LaunchTemplateVersion"]["VersionNumber"])
    aws_call(
        what, ec2.modify_launch_template, LaunchTemplateName=spec.name, DefaultVersion=str(version)
    )
    return LaunchTemplateResult(template_id, version, changes, before)


# -- Auto Scaling group ------------------------------------------------------------


@dataclass(frozen=True)
class AutoScalingGroupResult:
    """What :func:`ensure_auto_scaling_group` did and the group's readiness afterwards
    (``None`` in a dry run of a group not yet created)."""

    changes: tuple[str, ...]
    readiness: Readiness | None


def _target_group_arns(elbv2: Any, spec: AutoScalingGroupSpec, *, dry_run: bool) -> dict[str, str]:
    what = f"Auto Scaling group {spec.name}"
    arns: dict[str, str] = {}
    for name in spec.target_groups:
        out, code = _code_of(elbv2.describe_target_groups, Names=[name])
        if code and code != "TargetGroupNotFound":
            raise ComputeError(f"{what}: target group {name}: DescribeTargetGroups ({code})")
        if code or not out.get("TargetGroups"):
            if not dry_run:
                raise MissingResourceError(f"{what}: target group {name} not found")
            arns[name] = f"(new target group {name})"
            continue
        arns[name] = str(out["TargetGroups"][0]["TargetGroupArn"])
    return arns


def _check_subnets(ec2: Any, spec: AutoScalingGroupSpec) -> None:
    what = f"Auto Scaling group {spec.name}"
    for subnet in spec.subnets:
        out, code = _code_of(ec2.describe_subnets, SubnetIds=[subnet])
        if code or not out.get("Subnets"):
            raise MissingResourceError(f"{what}: subnet {subnet} not found ({code or 'none'})")


def _health(elbv2: Any, arns: Mapping[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    return {
        name: read_target_health(
            aws_call(f"target group {name}", elbv2.describe_target_health, TargetGroupArn=arn)
        )
        for name, arn in arns.items()
        if arn.startswith("arn:")
    }


def _gone(ec2: Any, ids: set[str]) -> set[str]:
    """Of ``ids``, the instances that no longer run (terminated, going, or unknown)."""
    if not ids:
        return set()
    out = aws_call(
        "instances",
        ec2.describe_instances,
        Filters=[{"Name": "instance-id", "Values": sorted(ids)}],
    )
    alive = {
        str(i["InstanceId"])
        for r in out.get("Reservations", [])
        for i in r.get("Instances", [])
        if i.get("State", {}).get("Name") not in ("terminated", "shutting-down")
    }
    return ids - alive


def ensure_auto_scaling_group(
    autoscaling: Any,
    ec2: Any,
    elbv2: Any,
    spec: AutoScalingGroupSpec,
    *,
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 600.0,
    poll: float = 5.0,
) -> AutoScalingGroupResult:
    """Create or fix the group, deregister instances that left it, wait until in service.

    Waiting ends when the group's desired number of instances is ``InService``, healthy
    to the group and ``healthy`` in every attached target group; after ``timeout`` a
    :class:`~cdlib.aws.compute.NotInServiceError` names the instances that are not.
    """
    what = f"Auto Scaling group {spec.name}"
    _check_subnets(ec2, spec)
    arns = _target_group_arns(elbv2, spec, dry_run=dry_run)
    names = {a: n for n, a in arns.items()}
    state = read_auto_scaling_group(
        aws_call(what, autoscaling.describe_auto_scaling_groups, AutoScalingGroupNames=[spec.name])
    )
    changes: list[str] = []
    if state is None:
        templates, _ = read_template(ec2, spec.launch_template)
        lt = read_launch_template(templates, {"LaunchTemplateVersions": []})
        if lt is None and not dry_run:
            raise MissingResourceError(f"{what}: launch template {spec.launch_template} not found")
        changes.append(
            f"create Auto Scaling group {spec.name} ({spec.initial_desired} instances, "
            f"{spec.min_size}..{spec.max_size})"
        )
        if dry_run:
            return AutoScalingGroupResult(tuple(changes), None)
        assert lt is not None
        tags = managed_tags(spec.tags)
        aws_call(
            what,
            autoscaling.create_auto_scaling_group,
            AutoScalingGroupName=spec.name,
            # The version is pinned: later ones reach the group through a release.
            LaunchTemplate={"LaunchTemplateName": spec.launch_template, "Version": str(lt.default)},
            MinSize=spec.min_size,
            MaxSize=spec.max_size,
            DesiredCapacity=spec.initial_desired,
            VPCZoneIdentifier=",".join(spec.subnets),
            HealthCheckType=spec.health_check_type,
            HealthCheckGracePeriod=spec.health_check_grace_period,
            TargetGroupARNs=list(arns.values()),
            Tags=_asg_tags(spec.name, tags),
        )
    else:
        decided = decide_auto_scaling_group(spec, state, arns)
        changes += decided.describe(spec.name, names)
        if not dry_run:
            if decided.update:
                aws_call(
                    what,
                    autoscaling.update_auto_scaling_group,
                    AutoScalingGroupName=spec.name,
                    **decided.update,
                )
            if decided.attach:
                aws_call(
                    what,
                    autoscaling.attach_load_balancer_target_groups,
                    AutoScalingGroupName=spec.name,
                    TargetGroupARNs=list(decided.attach),
                )
            if decided.detach:
                aws_call(
                    what,
                    autoscaling.detach_load_balancer_target_groups,
                    AutoScalingGroupName=spec.name,
                    TargetGroupARNs=list(decided.detach),
                )
            if decided.tags:
                aws_call(
                    what,
                    autoscaling.create_or_update_tags,
                    Tags=_asg_tags(spec.name, decided.tags),
                )
        changes += deregister_departed(ec2, elbv2, state, arns, dry_run=dry_run, name=spec.name)
        if dry_run:
            return AutoScalingGroupResult(tuple(changes), readiness(state, _health(elbv2, arns)))
    ready = wait_in_service(
        autoscaling, elbv2, spec.name, arns, wait=wait, timeout=timeout, poll=poll
    )
    return AutoScalingGroupResult(tuple(changes), ready)


def deregister_departed(
    ec2: Any,
    elbv2: Any,
    state: AutoScalingGroupState,
    target_group_arns: Mapping[str, str],
    *,
    dry_run: bool = False,
    name: str = "",
) -> list[str]:
    """Deregister instances that left the group but are still registered in its target
    groups (``target_group_arns``: name -> ARN); one line per change.

    A real ELB drops them itself; other setups may not. Only instances that no longer run
    are touched, never another owner's targets.
    """
    members = {i.instance_id for i in state.instances}
    health = _health(elbv2, target_group_arns)
    registered = {t for h in health.values() for t in h}
    gone = _gone(ec2, {t for t in registered - members if t.startswith("i-")})
    lines = []
    for tg, targets in health.items():
        left = departed_targets(members, targets, gone)
        if not left:
            continue
        lines.append(f"{name or tg}: deregister {', '.join(left)} from {tg} (left the group)")
        if not dry_run:
            aws_call(
                f"target group {tg}",
                elbv2.deregister_targets,
                TargetGroupArn=target_group_arns[tg],
                Targets=[{"Id": t} for t in left],
            )
    return lines


def group_readiness(
    autoscaling: Any, elbv2: Any, name: str, target_group_arns: Mapping[str, str]
) -> Readiness:
    """Read the group and its target groups' health once."""
    state = read_auto_scaling_group(
        aws_call(
            f"Auto Scaling group {name}",
            autoscaling.describe_auto_scaling_groups,
            AutoScalingGroupNames=[name],
        )
    )
    if state is None:
        raise MissingResourceError(f"Auto Scaling group {name} not found")
    return readiness(state, _health(elbv2, target_group_arns))


def wait_in_service(
    autoscaling: Any,
    elbv2: Any,
    name: str,
    target_group_arns: Mapping[str, str],
    *,
    wait: bool = True,
    timeout: float = 600.0,
    poll: float = 5.0,
) -> Readiness:
    """Poll :func:`group_readiness` until done; raise :class:`NotInServiceError` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        ready = group_readiness(autoscaling, elbv2, name, target_group_arns)
        if ready.done or not wait:
            return ready
        if time.monotonic() >= deadline:
            raise NotInServiceError(f"{ready.report(name)} (waited {timeout:g}s)")
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


__all__ = [
    "AutoScalingGroupResult",
    "LaunchTemplateResult",
    "SecurityGroupResult",
    "aws_call",
    "client",
    "deregister_departed",
    "ensure_auto_scaling_group",
    "ensure_launch_template",
    "ensure_security_group",
    "group_readiness",
    "read_template",
    "security_group_ids",
    "wait_in_service",
]
