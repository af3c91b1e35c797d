"""Blue/green and canary drive an ELBv2 listener's forward action (moto server over HTTP)."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from cdlib.release import BlueGreen, Canary, CanaryStep, ElbV2Spec, HookEvent, Hooks, rollback
from cdlib.release.history import History
from cdlib.traffic.elbv2 import ElbV2Router
from cdlib.traffic.elbv2_provision import LoadBalancerSpec, TargetGroupSpec, ensure_load_balancer
from tests.integration.traffic.traffic_helpers import Aws


def test_bluegreen_and_canary_on_elbv2(aws: Aws, endpoint: str, tmp_path: Path) -> None:
    name = "rel-" + uuid.uuid4().hex[:6]
    handles = ensure_load_balancer(
        aws.elbv2,
        LoadBalancerSpec(
            name=name,
            vpc_id=aws.vpc,
            subnets=aws.subnets,
            default_group="blue",
            target_groups=(
                TargetGroupSpec("blue", f"{name}-b", 8080, target_type="instance"),
                TargetGroupSpec("green", f"{name}-g", 8080, target_type="instance"),
            ),
        ),
    )
    ids = [
        i["InstanceId"]
        for i in aws.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=4, MaxCount=4, SubnetId=aws.subnets[0]
        )["Instances"]
    ]
    inv = {
        "all": {
            "children": {
                "blue": {"hosts": {f"b{i}": {"instance_id": ids[i]} for i in (0, 1)}},
                "green": {"hosts": {f"g{i}": {"instance_id": ids[i + 2]} for i in (0, 1)}},
            }
        }
    }
    inv_path = tmp_path / "inv.yml"
    inv_path.write_text(yaml.safe_dump(inv))
    spec = ElbV2Spec(
        listener_arn=handles.listener_arn,
        target_groups=handles.target_groups,
        region="us-east-1",
        endpoint_url=endpoint,
    )
    state = str(tmp_path / "state")
    common = {
        "router": spec,
        "state_dir": state,
        "port": 8080,
        "target_var": "instance_id",
        "health_timeout": 10,
    }
    router = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    assert router.state().live == "blue"

    res = BlueGreen(app="web", version="2.0.0", **common).run(str(inv_path))
    assert res.ok, [r.msg for r in res.results if r.status.value == "failed"]
    assert router.state().live == "green"
    assert set(router.targets("green")) == {t for t in router.targets("green")}
    assert {t.host for t in router.targets("green")} == set(ids[2:])
    assert router.release("green") == "2.0.0"

    seen: list[dict[str, int]] = []

    def after_shift(ev: HookEvent) -> None:
        seen.append(dict(router.state().weights))

    canary = Canary(
        app="web",
        version="3.0.0",
        hooks=Hooks(after_shift=after_shift),
        steps=[CanaryStep(10, pause=0.2), CanaryStep(50, pause=0.2), 100],
        on_inconclusive="continue",
        **common,
    )
    res = canary.run(str(inv_path))
    assert res.ok, [r.msg for r in res.results if r.status.value == "failed"]
    assert seen == [{"blue": 10, "green": 90}, {"blue": 50, "green": 50}, {"blue": 100, "green": 0}]
    # CloudWatch has no data for a moto load balancer: the analysis said so.
    assert any("inconclusive" in r.msg for r in res.results if r.task.startswith("analysis"))
    rec = rollback("web", state_dir=state)
    assert rec.new_group == "green" and router.state().live == "green"
    assert [r.strategy for r in History("web", state_dir=state).all()] == [
        "blue/green",
        "canary",
        "rollback",
    ]
