"""Sticky canary weights and preview rules of the ELBv2 router, on moto in server mode.

moto does not route requests, so these check what the load balancer is told: the forward
action's target-group stickiness, and the http-header listener rule that exists while a
preview is open and is gone after it (and after a switch back).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cdlib.traffic.base import PreviewRoute, RouterInputError, StickySpec
from cdlib.traffic.elbv2 import ElbV2Router
from cdlib.traffic.elbv2_provision import (
    LoadBalancerSpec,
    RuleSpec,
    TargetGroupSpec,
    ensure_load_balancer,
)
from tests.integration.traffic.traffic_helpers import Aws


def _router(aws: Aws) -> tuple[ElbV2Router, Any]:
    name = "sp-" + uuid.uuid4().hex[:8]
    handles = ensure_load_balancer(
        aws.elbv2,
        LoadBalancerSpec(
            name=name,
            vpc_id=aws.vpc,
            subnets=aws.subnets,
            target_groups=(
                TargetGroupSpec("blue", f"{name}-blue", 8080),
                TargetGroupSpec("green", f"{name}-green", 8080),
            ),
            default_group="blue",
            rules=(RuleSpec(1, "blue", path_patterns=("/api/*",)),),
        ),
    )
    router = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    return router, handles


def _forward(aws: Aws, listener_arn: str) -> dict[str, Any]:
    listener = aws.elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    action = next(a for a in listener["DefaultActions"] if a["Type"] == "forward")
    return dict(action["ForwardConfig"])


def test_sticky_weights_set_target_group_stickiness_and_switch_clears_it(aws: Aws) -> None:
    router, handles = _router(aws)
    state = router.set_sticky_weights(
        {"blue": 80, "green": 20}, StickySpec(cookie="uid", seconds=900)
    )
    assert state.sticky and dict(state.weights) == {"blue": 80, "green": 20}
    config = _forward(aws, handles.listener_arn)
    assert config["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 900}
    weights = {t["TargetGroupArn"]: t["Weight"] for t in config["TargetGroups"]}
    assert weights == {handles.target_groups["blue"]: 80, handles.target_groups["green"]: 20}
    # Rollback: all to blue with stickiness off, so no client stays on green.
    state = router.switch("blue")
    assert state.live == "blue" and not state.sticky
    config = _forward(aws, handles.listener_arn)
    assert config["TargetGroupStickinessConfig"]["Enabled"] is False


def test_preview_rule_exists_while_open_and_is_gone_after(aws: Aws) -> None:
    router, handles = _router(aws)
    assert router.preview_route() is None
    route = router.open_preview("green")
    assert route == PreviewRoute("green", "X-Release-Preview")
    rules = aws.elbv2.describe_rules(ListenerArn=handles.listener_arn)["Rules"]
    preview = [r for r in rules if [c["Field"] for c in r["Conditions"]] == ["http-header"]]
    assert len(preview) == 1
    rule = preview[0]
    # The lowest free priority: 1 is the provisioned /api/* rule.
    assert rule["Priority"] == "2"
    assert rule["Conditions"][0]["HttpHeaderConfig"] == {
        "HttpHeaderName": "X-Release-Preview",
        "Values": ["green"],
    }
    targets = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert [t["TargetGroupArn"] for t in targets] == [handles.target_groups["green"]]
    # Users: the default action still forwards everything else to blue only.
    assert router.state().live == "blue"
    # A fresh router (cdlib rollback in another process) finds and removes it.
    fresh = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    assert fresh.preview_route() == route
    assert fresh.close_preview() is True
    assert router.preview_route() is None and router.close_preview() is False
    left = aws.elbv2.describe_rules(ListenerArn=handles.listener_arn)["Rules"]
    assert [r["Priority"] for r in left] == ["1", "default"]


def test_preview_header_name_is_validated_before_any_call(aws: Aws) -> None:
    router, _handles = _router(aws)
    aws.writes.clear()
    with pytest.raises(RouterInputError, match="preview header"):
        router.open_preview("green", header="X-Bad header")
    with pytest.raises(RouterInputError, match="unknown group"):
        router.open_preview("purple")
    assert not aws.writes
