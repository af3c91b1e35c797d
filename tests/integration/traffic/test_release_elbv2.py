"""Blue/green and canary drive an ELBv2 listener's forward action (moto server over HTTP)."""

from __future__ import annotations

from pathlib import Path

from cdlib.release import BlueGreen, Canary, CanaryStep, ElbV2Spec, HookEvent, Hooks, rollback
from cdlib.release.history import History
from cdlib.traffic.elbv2 import ElbV2Router
from tests.integration.traffic.traffic_helpers import Aws, instance_blue_green


def test_bluegreen_and_canary_on_elbv2(aws: Aws, endpoint: str, tmp_path: Path) -> None:
    handles, ids, inv_path = instance_blue_green(aws, tmp_path, "rel", per_group=2)
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
    assert {t.host for t in router.targets("green")} == set(ids["green"])
    assert router.tagged_release("green") == "2.0.0"

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


def test_alarm_in_alarm_rolls_back_bluegreen_and_canary_on_elbv2(
    aws: Aws, endpoint: str, tmp_path: Path
) -> None:
    handles, _ids, inv_path = instance_blue_green(aws, tmp_path, "alm", per_group=1)
    spec = ElbV2Spec(
        listener_arn=handles.listener_arn,
        target_groups=handles.target_groups,
        region="us-east-1",
        endpoint_url=endpoint,
    )
    alarm = f"alm-{tmp_path.name}"[:200]
    aws.cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    aws.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="t")

    def fire(_ev: HookEvent) -> None:
        aws.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="t")

    state = str(tmp_path / "state")
    common = {
        "router": spec,
        "state_dir": state,
        "port": 8080,
        "target_var": "instance_id",
        "health_timeout": 10,
        "alarms": [alarm],
        "alarm_interval": 0.1,
        "hooks": Hooks(after_shift=fire),
    }
    router = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    res = BlueGreen(app="web", version="2.0.0", bake_time=5, **common).run(str(inv_path))
    assert not res.ok and router.state().live == "blue"
    [rec] = History("web", state_dir=state).all()
    assert rec.outcome == "rolled_back"
    assert f"CloudWatch alarm {alarm} in ALARM during the bake time" in rec.reason

    aws.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="t")
    canary = Canary(
        app="web",
        version="2.0.0",
        steps=[CanaryStep(10, pause=5.0, analyse=False), 100],
        **common,
    )
    res = canary.run(str(inv_path))
    assert not res.ok and router.state().live == "blue"
    last = History("web", state_dir=state).latest()
    assert last is not None and last.outcome == "rolled_back"
    assert f"CloudWatch alarm {alarm} in ALARM after the shift" in last.reason
