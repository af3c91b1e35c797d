"""Pure readers and decisions of cdlib.aws.compute, and error translation, from canned data."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdlib.aws.compute import (
    AutoScalingGroupSpec,
    ComputeError,
    ComputeInputError,
    ConflictError,
    IngressRule,
    LaunchTemplateSpec,
    SecurityGroupSpec,
    decide_auto_scaling_group,
    decide_launch_template,
    decide_security_group,
    read_auto_scaling_group,
    read_launch_template,
    read_security_group,
    readiness,
)
from cdlib.aws.provision import aws_call

SG = {
    "SecurityGroups": [
        {
            "GroupId": "sg-1",
            "Description": "app",
            "Tags": [{"Key": "cdlib:managed", "Value": "true"}],
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "UserIdGroupPairs": [{"GroupId": "sg-lb"}],
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                },
            ],
        }
    ]
}


def test_security_group_decision_adds_and_revokes_exactly() -> None:
    spec = SecurityGroupSpec("app", "vpc-1", "app", (IngressRule(8080, source_group="lb"),))
    state = read_security_group(SG)
    changes = decide_security_group(spec, state, {"lb": "sg-lb"})
    assert changes.authorize == () and changes.tags == {}
    assert changes.revoke == (("tcp", 22, 22, "cidr:0.0.0.0/0"),)
    with pytest.raises(ConflictError, match="description"):
        decide_security_group(SecurityGroupSpec("app", "vpc-1", "other"), state, {})


def test_launch_template_same_content_is_no_version_and_template_tags_do_not_count() -> None:
    spec = LaunchTemplateSpec("web", "ami-12c6146b", "t3.micro", user_data="x")
    data = spec.data({})
    data["TagSpecifications"] = [
        *data["TagSpecifications"],
        {"ResourceType": "launch-template", "Tags": [{"Key": "k", "Value": "v"}]},
    ]
    templates = {
        "LaunchTemplates": [
            {"LaunchTemplateId": "lt-1", "LatestVersionNumber": 4, "DefaultVersionNumber": 4}
        ]
    }
    state = read_launch_template(
        templates, {"LaunchTemplateVersions": [{"LaunchTemplateData": data}]}
    )
    assert decide_launch_template(spec, state, {}) == []
    bigger = LaunchTemplateSpec("web", "ami-12c6146b", "t3.large", user_data="x")
    assert decide_launch_template(bigger, state, {}) == [
        "launch template web: version 5 (InstanceType)"
    ]


def _group(**over: Any) -> dict[str, Any]:
    g = {
        "MinSize": 1,
        "MaxSize": 3,
        "DesiredCapacity": 2,
        "VPCZoneIdentifier": "subnet-a,subnet-b",
        "HealthCheckType": "ELB",
        "HealthCheckGracePeriod": 300,
        "TargetGroupARNs": ["arn:tg"],
        "LaunchTemplate": {"LaunchTemplateName": "web", "Version": "7"},
        "Tags": [{"Key": "cdlib:managed", "Value": "true"}],
        "Instances": [
            {"InstanceId": "i-1", "LifecycleState": "InService", "HealthStatus": "Healthy"},
            {"InstanceId": "i-2", "LifecycleState": "Pending", "HealthStatus": "Healthy"},
        ],
    }
    return {"AutoScalingGroups": [{**g, **over}]}


def test_group_decision_leaves_desired_and_version_to_releases() -> None:
    spec = AutoScalingGroupSpec(
        "web", "web", ("subnet-b", "subnet-a"), 1, 3, desired=1, target_groups=("tg",)
    )
    state = read_auto_scaling_group(_group())
    assert state is not None
    assert decide_auto_scaling_group(spec, state, {"tg": "arn:tg"}).empty
    small = AutoScalingGroupSpec("web", "web", ("subnet-a",), 0, 1, target_groups=("tg",))
    changed = decide_auto_scaling_group(small, state, {"tg": "arn:tg"})
    assert changed.update == {
        "MaxSize": 1,
        "MinSize": 0,
        "DesiredCapacity": 1,
        "VPCZoneIdentifier": "subnet-a",
    }


def test_readiness_reads_membership_from_the_group_and_health_as_reported() -> None:
    state = read_auto_scaling_group(_group())
    assert state is not None
    # i-9 is registered and healthy but not a member: it does not count.
    health = {"tg": {"i-1": ("healthy", ""), "i-9": ("healthy", "")}}
    ready = readiness(state, health)
    assert ready.ready == ("i-1",) and not ready.done
    assert (
        ready.report("web")
        == "web: 1 of 2 instances ready; not ready: i-2 (Pending; unregistered in tg)"
    )


def test_bad_specs_are_refused_before_aws() -> None:
    with pytest.raises(ComputeInputError, match="desired 5"):
        AutoScalingGroupSpec("web", "web", ("subnet-a",), 1, 3, desired=5, target_groups=("t",))
    with pytest.raises(ComputeInputError, match="needs target_groups"):
        AutoScalingGroupSpec("web", "web", ("subnet-a",), 1, 3)
    with pytest.raises(ComputeInputError, match="no AMI id"):
        LaunchTemplateSpec("web", "ubuntu", "t3.micro")
    with pytest.raises(ComputeInputError, match="exactly one"):
        IngressRule(80)


def test_permission_denied_names_the_resource_and_the_call() -> None:
    def denied(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}},
            "CreateLaunchTemplate",
        )

    with pytest.raises(ComputeError) as exc:
        aws_call("launch template web", denied)
    assert str(exc.value) == (
        "launch template web: permission denied for CreateLaunchTemplate "
        "(UnauthorizedOperation): not allowed"
    )
