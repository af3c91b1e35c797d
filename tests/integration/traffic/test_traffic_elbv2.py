"""The ELBv2 router and provisioning against moto in server mode, over HTTP."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdlib.traffic.base import RouterInputError, Target
from cdlib.traffic.elbv2 import RELEASE_TAG, ElbV2Router
from cdlib.traffic.elbv2_provision import (
    LoadBalancerSpec,
    ProvisionError,
    RuleSpec,
    TargetGroupSpec,
    ensure_load_balancer,
)
from tests.integration.traffic.traffic_helpers import Aws


def _spec(aws: Aws, **over: Any) -> LoadBalancerSpec:
    name = over.pop("name", "web-" + uuid.uuid4().hex[:8])
    fields: dict[str, Any] = {
        "name": name,
        "vpc_id": aws.vpc,
        "subnets": aws.subnets,
        "target_groups": (
            TargetGroupSpec("blue", f"{name}-blue", 8080),
            TargetGroupSpec("green", f"{name}-green", 8080),
        ),
        "default_group": "blue",
        "rules": (RuleSpec(10, "green", path_patterns=("/beta/*",)),),
        "tags": {"app": "web"},
    }
    fields.update(over)
    return LoadBalancerSpec(**fields)


def _router(aws: Aws, spec: LoadBalancerSpec, **kw: Any) -> ElbV2Router:
    handles = ensure_load_balancer(aws.elbv2, spec)
    return ElbV2Router(
        aws.elbv2,
        target_groups=handles.target_groups,
        listener_arn=handles.listener_arn,
        cloudwatch=aws.cloudwatch,
        **kw,
    )


def test_provision_switch_weights_read_back(aws: Aws) -> None:
    spec = _spec(aws)
    handles = ensure_load_balancer(aws.elbv2, spec)
    assert "created load balancer " + spec.name in handles.changed
    assert set(handles.target_groups) == {"blue", "green"}
    router = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    assert router.state().live == "blue"

    state = router.switch("green")
    assert state.live == "green" and dict(state.weights) == {"blue": 0, "green": 100}

    state = router.set_weights({"blue": 90, "green": 10})
    assert dict(state.weights) == {"blue": 90, "green": 10} and state.live is None
    assert state.share("green") == pytest.approx(0.1)

    state = router.set_weights({"blue": 90, "green": 10}, sticky=True, sticky_seconds=600)
    assert state.sticky
    # A fresh router reads the same from AWS alone.
    fresh = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    assert fresh.state() == state


def test_idempotent_rerun_makes_no_write_calls(aws: Aws) -> None:
    spec = _spec(aws)
    first = ensure_load_balancer(aws.elbv2, spec)
    assert aws.writes["CreateLoadBalancer"] == 1 and aws.writes["CreateTargetGroup"] == 2
    assert aws.writes["CreateListener"] == 1 and aws.writes["CreateRule"] == 1
    router = ElbV2Router(
        aws.elbv2, target_groups=first.target_groups, listener_arn=first.listener_arn
    )
    router.set_weights({"blue": 90, "green": 10})
    aws.writes.clear()

    again = ensure_load_balancer(aws.elbv2, spec)
    assert again.changed == ()
    assert again.target_groups == first.target_groups
    assert sum(aws.writes.values()) == 0, aws.writes
    # Re-provisioning left the router's weights alone.
    assert dict(router.state().weights) == {"blue": 90, "green": 10}
    # Setting the weights the listener already has writes nothing either.
    router.set_weights({"blue": 90, "green": 10})
    router.register("blue", [])
    assert sum(aws.writes.values()) == 0, aws.writes


def test_provision_fixes_drift_and_refuses_conflicts(aws: Aws) -> None:
    spec = _spec(aws)
    handles = ensure_load_balancer(aws.elbv2, spec)
    blue = handles.target_groups["blue"]
    aws.elbv2.modify_target_group(TargetGroupArn=blue, HealthCheckPath="/other")
    aws.elbv2.remove_tags(ResourceArns=[blue], TagKeys=["app"])
    aws.writes.clear()
    fixed = ensure_load_balancer(aws.elbv2, spec)
    assert aws.writes == Counter({"ModifyTargetGroup": 1, "AddTags": 1}), aws.writes
    assert any("health check path" in c for c in fixed.changed)

    bad = _spec(
        aws,
        name=spec.name,
        target_groups=(
            TargetGroupSpec("blue", f"{spec.name}-blue", 9090),
            TargetGroupSpec("green", f"{spec.name}-green", 8080),
        ),
    )
    with pytest.raises(ProvisionError, match="Port is 8080, spec wants 9090"):
        ensure_load_balancer(aws.elbv2, bad)


def test_rule_router_drives_the_rule_not_the_listener(aws: Aws) -> None:
    spec = _spec(aws)
    handles = ensure_load_balancer(aws.elbv2, spec)
    rule = ElbV2Router(
        aws.elbv2,
        target_groups=handles.target_groups,
        listener_arn=handles.listener_arn,
        rule_arn=handles.rules[10],
    )
    listener = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    assert rule.state().live == "green"
    assert rule.switch("blue").live == "blue"
    assert listener.state().live == "blue"
    rule.set_weights({"blue": 1, "green": 999})
    assert dict(rule.state().weights) == {"blue": 1, "green": 999}


def test_input_is_validated_before_any_call(aws: Aws) -> None:
    spec = _spec(aws)
    router = _router(aws, spec)
    aws.writes.clear()
    with pytest.raises(RouterInputError, match=r"green: weight 1000 is not in 0\.\.999"):
        router.set_weights({"blue": 0, "green": 1000})
    with pytest.raises(RouterInputError, match="unknown group 'red'"):
        router.switch("red")
    with pytest.raises(RouterInputError, match="not an ELBv2 targetgroup ARN"):
        ElbV2Router(aws.elbv2, target_groups={"blue": "arn:nope"}, listener_arn=router.listener_arn)
    with pytest.raises(RouterInputError, match="needs subnets in two AZs"):
        _spec(aws, subnets=(aws.subnets[0],))
    with pytest.raises(RouterInputError, match="rule 10: unknown group 'red'"):
        _spec(aws, rules=(RuleSpec(10, "red", path_patterns=("/x",)),))
    assert sum(aws.writes.values()) == 0


def test_targets_register_deregister_and_health(aws: Aws) -> None:
    name = "inst-" + uuid.uuid4().hex[:8]
    spec = _spec(
        aws,
        name=name,
        target_groups=(
            TargetGroupSpec("blue", f"{name}-b", 8080, target_type="instance"),
            TargetGroupSpec("green", f"{name}-g", 8080, target_type="instance"),
        ),
    )
    router = _router(aws, spec)
    ids = [
        i["InstanceId"]
        for i in aws.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=2, MaxCount=2, SubnetId=aws.subnets[0]
        )["Instances"]
    ]
    targets = [Target(i, 8080) for i in ids]
    router.register("blue", targets)
    assert router.targets("blue") == tuple(sorted(targets))
    aws.writes.clear()
    router.register("blue", targets)  # already there: no call
    router.deregister("blue", [Target("i-0123456789abcdef0", 8080)])  # unknown: no error
    assert sum(aws.writes.values()) == 0, aws.writes

    assert router.wait_healthy("blue", timeout=5, interval=1).healthy
    aws.ec2.stop_instances(InstanceIds=[ids[0]])
    report = router.wait_healthy("blue", timeout=2, interval=1)
    assert report.timed_out and not report.healthy
    assert [h.target for h in report.unhealthy] == [Target(ids[0], 8080)]
    assert "Target.InvalidState" in report.describe()
    assert "stopped" in report.describe()

    router.deregister("blue", [Target(ids[0], 8080)], timeout=10)
    assert router.targets("blue") == (Target(ids[1], 8080),)


def test_release_tags_and_metrics(aws: Aws) -> None:
    spec = _spec(aws)
    router = _router(aws, spec)
    router.tag_release("green", "2.0.1")
    assert router.tagged_release("green") == "2.0.1"
    assert router.tagged_release("blue") is None
    tags = aws.elbv2.describe_tags(ResourceArns=[router._tgs["green"]])["TagDescriptions"][0]
    keys = {t["Key"]: t["Value"] for t in tags["Tags"]}
    assert keys[RELEASE_TAG] == "2.0.1" and "cdlib:released-at" in keys

    # CloudWatch as the ALB would publish it; the router reads it back per group.
    lb_dim = "/".join(router.listener_arn.split(":listener/")[1].split("/")[:3])
    tg_dim = "targetgroup/" + router._tgs["green"].split(":targetgroup/")[1]
    dims = [{"Name": "LoadBalancer", "Value": lb_dim}, {"Name": "TargetGroup", "Value": tg_dim}]
    # ALBs publish per minute; data points lie in the past.
    now = datetime.now(UTC) - timedelta(minutes=1)
    aws.cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": "RequestCount", "Dimensions": dims, "Value": 200, "Timestamp": now},
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Value": 3,
                "Timestamp": now,
            },
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "Value": 0.25,
                "Timestamp": now,
            },
        ],
    )
    m = router.metrics(minutes=5)
    assert (m["green"].requests, m["green"].errors_5xx) == (200, 3)
    assert m["green"].response_time_ms == pytest.approx(250.0)
    assert m["blue"].requests == 0 and m["blue"].response_time_ms is None


def test_dry_run_reports_without_writing(aws: Aws) -> None:
    spec = _spec(aws)
    plan = ensure_load_balancer(aws.elbv2, spec, dry_run=True)
    assert plan.changed == (
        f"created load balancer {spec.name}",
        f"created target group {spec.name}-blue",
        f"created target group {spec.name}-green",
        "created listener :80",
        "created rule 10",
    )
    assert sum(aws.writes.values()) == 0
    ensure_load_balancer(aws.elbv2, spec)
    aws.writes.clear()
    assert ensure_load_balancer(aws.elbv2, spec, dry_run=True).changed == ()
    assert sum(aws.writes.values()) == 0


def test_other_listener_actions_are_kept(aws: Aws) -> None:
    spec = _spec(aws)
    router = _router(aws, spec)
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com",
            "AuthorizationEndpoint": "https://idp.example.com/auth",
            "TokenEndpoint": "https://idp.example.com/token",
            "UserInfoEndpoint": "https://idp.example.com/userinfo",
            "ClientId": "cdlib",
            "ClientSecret": "not-returned-by-aws",
        },
    }
    forward = {"Type": "forward", "Order": 2, "TargetGroupArn": router._tgs["blue"]}
    aws.elbv2.modify_listener(ListenerArn=router.listener_arn, DefaultActions=[oidc, forward])
    router.set_weights({"blue": 90, "green": 10})
    actions = aws.elbv2.describe_listeners(ListenerArns=[router.listener_arn])["Listeners"][0][
        "DefaultActions"
    ]
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]
    assert actions[0]["AuthenticateOidcConfig"]["ClientId"] == "cdlib"
    assert dict(router.state().weights) == {"blue": 90, "green": 10}
