"""A whole AWS environment from nothing: one definition, one inventory per environment.

    cdlib run playbooks/aws_environment.py -i inventories/aws/staging
    cdlib run playbooks/aws_environment.py -i inventories/aws/production --check

Creates (or converges) two security groups (load balancer, instances), a launch template
whose user data is rendered from ``templates/aws_user_data.sh.j2``, an application load
balancer with target groups ``<env>-web-blue`` and ``<env>-web-green``, the production
listener (``listener_port``, to blue) and a test listener (``test_listener_port``, to the
idle green group, for preview checks), and two Auto Scaling groups: blue at the
environment's size, green idle (0 instances). Sizes, instance type and names come from
the inventory; a re-run changes nothing. The tests run it against moto in
tests/integration/traffic/test_aws_environment.py.
"""

import os
from collections.abc import Mapping
from typing import Any

from cdlib import Play, tasks
from cdlib.aws.compute import (
    AutoScalingGroupSpec,
    IngressRule,
    LaunchTemplateSpec,
    SecurityGroupSpec,
)
from cdlib.traffic.elbv2_provision import LoadBalancerSpec, TargetGroupSpec

AWS = {
    "region": os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION")),
    "endpoint_url": os.environ.get("AWS_ENDPOINT_URL"),
}
GROUPS = ("blue", "green")


def name(v: Mapping[str, Any], *parts: str) -> str:
    """``staging-web-blue``: environment, app, then parts."""
    return "-".join((v["env"], v["app"], *parts))


def tags(v: Mapping[str, Any]) -> dict[str, str]:
    """Tags on everything of this environment."""
    return {"env": v["env"], "app": v["app"]}


def lb_group(v: Mapping[str, Any]) -> SecurityGroupSpec:
    """The load balancer's security group: both listeners open."""
    return SecurityGroupSpec(
        name(v, "lb"),
        v["vpc_id"],
        f"{v['app']} load balancer ({v['env']})",
        ingress=tuple(
            IngressRule(v[p], cidr="0.0.0.0/0") for p in ("listener_port", "test_listener_port")
        ),
        tags=tags(v),
    )


def app_group(v: Mapping[str, Any]) -> SecurityGroupSpec:
    """The instances' security group: the app port, from the load balancer only."""
    return SecurityGroupSpec(
        name(v, "app"),
        v["vpc_id"],
        f"{v['app']} instances ({v['env']})",
        ingress=(IngressRule(v["app_port"], source_group=name(v, "lb")),),
        tags=tags(v),
    )


def template(v: Mapping[str, Any]) -> LaunchTemplateSpec:
    """The launch template (user data comes from the task's template file)."""
    return LaunchTemplateSpec(
        name(v),
        v["ami_id"],
        v["instance_type"],
        security_groups=(name(v, "app"),),
        vpc_id=v["vpc_id"],
        tags=tags(v),
    )


def balancer(listener: str, default: str) -> Any:
    """The load balancer with one of its two listeners (each task ensures one)."""

    def build(v: Mapping[str, Any]) -> LoadBalancerSpec:
        return LoadBalancerSpec(
            name=name(v),
            vpc_id=v["vpc_id"],
            subnets=tuple(v["subnets"]),
            target_groups=tuple(
                TargetGroupSpec(g, name(v, g), v["app_port"], target_type="instance")
                for g in GROUPS
            ),
            default_group=default,
            listener_port=v[listener],
            tags=tags(v),
        )

    return build


def group(color: str) -> Any:
    """An Auto Scaling group: blue at the environment's size, green idle."""

    def build(v: Mapping[str, Any]) -> AutoScalingGroupSpec:
        size = v["size"]
        return AutoScalingGroupSpec(
            name(v, color),
            name(v),
            tuple(v["subnets"]),
            min_size=size["min"] if color == "blue" else 0,
            max_size=size["max"],
            desired=size["desired"] if color == "blue" else 0,
            target_groups=(name(v, color),),
            health_check_grace_period=120,
            tags={**tags(v), "color": color},
        )

    return build


play = Play("AWS environment", hosts="aws")
play.task(tasks.security_group(lb_group, **AWS))
play.task(tasks.security_group(app_group, **AWS))
play.task(
    tasks.launch_template(template, user_data_template="templates/aws_user_data.sh.j2", **AWS)
)
play.task(tasks.elbv2_load_balancer(balancer("listener_port", "blue"), **AWS))
play.task(tasks.elbv2_load_balancer(balancer("test_listener_port", "green"), **AWS))
for color in GROUPS:
    play.task(tasks.auto_scaling_group(group(color), wait_timeout=600, **AWS))
