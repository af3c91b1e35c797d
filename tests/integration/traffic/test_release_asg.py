"""Immutable blue/green and canary over Auto Scaling groups, alarms, on moto server.

The environment comes from ``playbooks/aws_environment.py`` (through the CLI), the
release from ``playbooks/aws_release.py`` or the Python API. moto cannot forward HTTP to
its instances, so the preview suite is a command check on the control machine that
needs the test listener's port (rendered from ``test_listener_port``), next to the
built-in step that points the test listener at the idle group and requires its targets
healthy.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from cdlib import Host, Inventory
from cdlib.aws.compute import LaunchTemplateSpec
from cdlib.checks.suite import Suite
from cdlib.checks.system import CommandCheck
from cdlib.cli.main import main
from cdlib.engine.errors import CdlibError
from cdlib.inventory.model import Group
from cdlib.release import (
    AsgBlueGreen,
    AsgCanary,
    AutoScalingSpec,
    CanaryStep,
    HookEvent,
    Hooks,
    Thresholds,
    rollback,
    status,
)
from cdlib.release.history import History
from cdlib.traffic.elbv2 import ElbV2Router
from tests.integration.traffic.traffic_helpers import Aws

REPO = Path(__file__).resolve().parents[3]
AMI = "ami-12c6146b"
#: The AMI of "the new build" (moto knows it). The new versions carry no user data:
#: moto server fails to launch from a version made by CreateLaunchTemplateVersion
#: that has user data.
NEW_AMI = "ami-1812c061"


class Env:
    """An environment made by playbooks/aws_environment.py, and handles on it."""

    def __init__(self, aws: Aws, endpoint: str, tmp_path: Path) -> None:
        self.name = "r" + uuid.uuid4().hex[:6]
        self.aws = aws
        self.endpoint = endpoint
        self.state = str(tmp_path / "state")
        self.vars = tmp_path / "env.yml"
        self.vars.write_text(
            yaml.safe_dump(
                {
                    "env": self.name,
                    "vpc_id": aws.vpc,
                    "subnets": list(aws.subnets),
                    "size": {"min": 1, "max": 3, "desired": 2},
                }
            )
        )
        s = boto3.session.Session(region_name="us-east-1")
        self.autoscaling = s.client("autoscaling", endpoint_url=endpoint)
        self.cloudwatch = s.client("cloudwatch", endpoint_url=endpoint)
        rc, out = cli(
            "run",
            str(REPO / "playbooks" / "aws_environment.py"),
            "-i",
            str(REPO / "inventories" / "aws" / "staging"),
            "-e",
            f"@{self.vars}",
        )
        assert rc == 0, out
        elbv2 = aws.elbv2
        lb = elbv2.describe_load_balancers(Names=[f"{self.name}-web"])["LoadBalancers"][0]
        listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        by_port = {li["Port"]: li["ListenerArn"] for li in listeners}
        self.tgs = {
            g: elbv2.describe_target_groups(Names=[f"{self.name}-web-{g}"])["TargetGroups"][0][
                "TargetGroupArn"
            ]
            for g in ("blue", "green")
        }
        self.spec = AutoScalingSpec(
            listener_arn=by_port[80],
            target_groups=self.tgs,
            region="us-east-1",
            endpoint_url=endpoint,
            auto_scaling_groups={g: f"{self.name}-web-{g}" for g in ("blue", "green")},
            test_listener_arn=by_port[8081],
        )
        self.router = ElbV2Router(elbv2, target_groups=self.tgs, listener_arn=by_port[80])
        self.test_router = ElbV2Router(elbv2, target_groups=self.tgs, listener_arn=by_port[8081])
        self.alarm = f"{self.name}-5xx"
        self.cloudwatch.put_metric_alarm(
            AlarmName=self.alarm,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
        self.cloudwatch.set_alarm_state(AlarmName=self.alarm, StateValue="OK", StateReason="t")

    def group(self, color: str) -> dict[str, Any]:
        """The Auto Scaling group of ``color`` as AWS describes it."""
        return dict(
            self.autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[f"{self.name}-web-{color}"]
            )["AutoScalingGroups"][0]
        )

    def template(self, ami: str = NEW_AMI, kind: str = "t3.micro") -> Any:
        """The environment's launch template with a new AMI (a new build)."""
        return LaunchTemplateSpec(
            f"{self.name}-web",
            ami,
            kind,
            security_groups=(f"{self.name}-web-app",),
            vpc_id=self.aws.vpc,
            tags={"env": self.name, "app": "web"},
        )

    def common(self) -> dict[str, Any]:
        """Options every release here shares."""
        return {
            "router": self.spec,
            "state_dir": self.state,
            "health_timeout": 10,
            "instance_timeout": 30,
            "poll_interval": 0.2,
            "alarm_interval": 0.1,
        }


def cli(*args: str) -> tuple[int, str]:
    """The CLI in this process; JSON events."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([*args, "--format", "json"])
    return rc, out.getvalue()


def local() -> Inventory:
    """The control machine only: the strategies talk to AWS from here."""
    host = Host("localhost", {"ansible_connection": "local"}, ["aws"])
    return Inventory(
        [host], {"all": Group("all", children=["aws"]), "aws": Group("aws", hosts=["localhost"])}
    )


def failures(res: Any) -> str:
    return "\n".join(str(r.msg) for r in res.results if r.status.value == "failed")


@pytest.fixture
def env(aws: Aws, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    yield Env(aws, endpoint, tmp_path)


PREVIEW = Suite(
    "preview",
    (
        CommandCheck(
            name="through the test listener",
            command="echo {{ test_url }}",
            stdout_contains=":{{ test_listener_port }}",
            on="control",
        ),
    ),
)


def test_immutable_bluegreen_scales_in_after_bake_and_rollback_scales_back(env: Env) -> None:
    assert env.router.state().live == "blue" and env.group("blue")["DesiredCapacity"] == 2
    res = AsgBlueGreen(
        app="web",
        version="2.0.0",
        launch_template=env.template(),
        preview_checks=PREVIEW,
        alarms=[env.alarm],
        bake_time=0.5,
        **env.common(),
    ).run(local())
    assert res.ok, failures(res)
    assert env.router.state().live == "green" and env.router.release("green") == "2.0.0"
    assert env.test_router.state().live == "green"
    green, blue = env.group("green"), env.group("blue")
    assert green["DesiredCapacity"] == 2 and green["LaunchTemplate"]["Version"] == "2"
    assert len([i for i in green["Instances"] if i["LifecycleState"] == "InService"]) == 2
    assert blue["DesiredCapacity"] == 0 and blue["MinSize"] == 0
    steps = [r.task for r in res.results]
    assert (
        steps.index("preview checks on green through the test listener")
        < steps.index("switch traffic blue -> green")
        < steps.index(f"bake 0.5s watching {env.alarm}")
        < steps.index(f"scale in {env.name}-web-blue")
    )
    [rec] = History("web", state_dir=env.state).all()
    assert rec.outcome == "succeeded"
    assert rec.router["launch_template_versions"] == {"blue": "1", "green": "2"}
    assert rec.router["capacity"] == {"blue": [1, 3, 2]}

    st = status("web", state_dir=env.state)
    assert "launch template " + env.name + "-web v2, 2 instance(s)" in st.groups["green"]
    assert "v1, 0 instance(s)" in st.groups["blue"]

    # Rollback scales the old group back to its recorded size, waits, then switches.
    back = rollback("web", state_dir=env.state)
    assert back.new_group == "blue" and env.router.state().live == "blue"
    assert env.group("blue")["DesiredCapacity"] == 2 and env.group("blue")["MinSize"] == 1
    assert "scaled " + env.name + "-web-blue back to 2" in back.steps[0].detail


def test_alarm_during_bake_rolls_back_and_a_rerun_converges(env: Env) -> None:
    def fire(_ev: HookEvent) -> None:
        env.cloudwatch.set_alarm_state(AlarmName=env.alarm, StateValue="ALARM", StateReason="t")

    release = AsgBlueGreen(
        app="web",
        version="2.0.0",
        launch_template=env.template(),
        alarms=[env.alarm],
        bake_time=5,
        keep_old="warm",
        hooks=Hooks(after_shift=fire),
        **env.common(),
    )
    res = release.run(local())
    assert not res.ok
    assert f"CloudWatch alarm {env.alarm} in ALARM during the bake time" in failures(res)
    assert env.router.state().live == "blue"
    assert env.group("blue")["DesiredCapacity"] == 2
    [rec] = History("web", state_dir=env.state).all()
    assert rec.outcome == "rolled_back" and env.alarm in rec.reason

    # The alarm clears; the same release again reuses the version and the instances.
    env.cloudwatch.set_alarm_state(AlarmName=env.alarm, StateValue="OK", StateReason="t")
    before = {i["InstanceId"] for i in env.group("green")["Instances"]}
    again = AsgBlueGreen(
        app="web",
        version="2.0.0",
        launch_template=env.template(),
        alarms=[env.alarm],
        keep_old="warm",
        **env.common(),
    ).run(local())
    assert again.ok, failures(again)
    assert env.router.state().live == "green"
    assert env.group("green")["LaunchTemplate"]["Version"] == "2"
    assert {i["InstanceId"] for i in env.group("green")["Instances"]} == before
    # Kept warm: the old group still runs at full size.
    assert env.group("blue")["DesiredCapacity"] == 2


def test_alarm_already_in_alarm_stops_before_anything_changes(env: Env) -> None:
    env.cloudwatch.set_alarm_state(AlarmName=env.alarm, StateValue="ALARM", StateReason="t")
    res = AsgBlueGreen(
        app="web",
        version="2.0.0",
        launch_template_version=1,
        alarms=[env.alarm],
        **env.common(),
    ).run(local())
    assert f"alarm {env.alarm} already in ALARM before the release" in failures(res)
    assert env.group("green")["DesiredCapacity"] == 0 and env.router.state().live == "blue"


def _metrics(env: Env, group: str, requests: int, errors: int) -> None:
    lb_dim = "/".join(env.spec.listener_arn.split(":listener/")[1].split("/")[:3])
    tg_dim = "targetgroup/" + env.tgs[group].split(":targetgroup/")[1]
    dims = [{"Name": "LoadBalancer", "Value": lb_dim}, {"Name": "TargetGroup", "Value": tg_dim}]
    now = datetime.now(UTC) - timedelta(seconds=30)
    env.cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": now},
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Value": errors,
                "Timestamp": now,
            },
        ],
    )


def test_asg_canary_steps_weights_and_rolls_back_on_target_group_metrics(env: Env) -> None:
    seen: list[dict[str, int]] = []

    def shifted(ev: HookEvent) -> None:
        seen.append(dict(env.router.state().weights))
        if ev.weights.get("green") == 20:
            _metrics(env, "green", 200, 40)  # 20 % 5xx on the canary

    res = AsgCanary(
        app="web",
        version="2.0.0",
        launch_template=env.template(),
        steps=[CanaryStep(20, pause=1.0), CanaryStep(50, pause=1.0), 100],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=50),
        sample_interval=0.3,
        hooks=Hooks(after_shift=shifted),
        **env.common(),
    ).run(local())
    assert not res.ok
    assert seen == [{"blue": 80, "green": 20}]
    assert "5xx rate 20.00%" in failures(res)
    assert env.router.state().live == "blue"
    assert env.group("blue")["DesiredCapacity"] == 2
    [rec] = History("web", state_dir=env.state).all()
    assert rec.outcome == "rolled_back" and rec.samples


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alarms": ["no-such-alarm"]}, "CloudWatch alarm 'no-such-alarm' does not exist"),
        ({"ami": "ami-0000dead"}, "AMI ami-0000dead not found"),
        ({"kind": "zz9.huge"}, "instance type zz9.huge refused by AWS"),
        ({"version": 42}, "has no version 42"),
        ({"target_group": True}, "not found"),
    ],
)
def test_bad_input_is_found_before_anything_changes(
    env: Env, change: dict[str, Any], message: str
) -> None:
    opts = env.common()
    if change.get("target_group"):
        opts["router"] = _with_tg(env.spec, env.tgs["green"][:-6] + "ffffff")
    template = env.template(ami=change.get("ami", NEW_AMI), kind=change.get("kind", "t3.micro"))
    strategy = AsgBlueGreen(
        app="web",
        version="2.0.0",
        launch_template=None if "version" in change else template,
        launch_template_version=change.get("version"),
        alarms=change.get("alarms", ()),
        **opts,
    )
    with pytest.raises(CdlibError) as exc:
        strategy.run(local())
    assert message in str(exc.value) and exc.value.exit_code == 4
    assert env.router.state().live == "blue" and env.group("green")["DesiredCapacity"] == 0
    ec2 = boto3.session.Session(region_name="us-east-1").client("ec2", endpoint_url=env.endpoint)
    versions = ec2.describe_launch_template_versions(LaunchTemplateName=f"{env.name}-web")
    assert len(versions["LaunchTemplateVersions"]) == 1
    assert not History("web", state_dir=env.state).all()


def _with_tg(spec: AutoScalingSpec, arn: str) -> AutoScalingSpec:
    import dataclasses

    return dataclasses.replace(spec, target_groups={**spec.target_groups, "green": arn})


def test_aws_release_example_playbook(env: Env) -> None:
    """playbooks/aws_release.py through the CLI, in its own process."""
    run_env = {
        **os.environ,
        "AWS_ENDPOINT_URL": env.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "CDLIB_STATE_DIR": env.state,
        "CDLIB_AWS_LISTENER_ARN": env.spec.listener_arn,
        "CDLIB_AWS_TEST_LISTENER_ARN": env.spec.test_listener_arn or "",
        "CDLIB_AWS_TARGET_GROUPS": json.dumps(env.tgs),
        "CDLIB_AWS_AUTO_SCALING_GROUPS": json.dumps(env.spec.auto_scaling_groups),
        "CDLIB_BAKE_TIME": "0.2",
    }
    args = [
        sys.executable,
        "-m",
        "cdlib",
        "run",
        "playbooks/aws_release.py",
        "-i",
        "inventories/aws/staging",
        "-e",
        f"@{env.vars}",
        "-e",
        "version=2.0.0",
        "-e",
        f"ami_id={NEW_AMI}",
        # Strategy options see the inventory's 'all' vars and -e, not the aws group's.
        "-e",
        "app=web",
        "-e",
        "instance_type=t3.micro",
    ]
    checked = subprocess.run(
        [*args, "--check"], cwd=REPO, env=run_env, capture_output=True, text=True, timeout=180
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "would switch all traffic to green" in checked.stdout
    assert env.router.state().live == "blue"
    real = subprocess.run(args, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=180)
    assert real.returncode == 0, real.stdout + real.stderr
    assert env.router.state().live == "green" and env.group("blue")["DesiredCapacity"] == 0
    rec = History("web", state_dir=env.state).latest()
    assert rec is not None and rec.router["launch_template_versions"]["green"] == "2"
    bad = subprocess.run(
        [*args, "-e", "version=3.0.0", "-e", f"ami_id={AMI}"],
        cwd=REPO,
        env={**run_env, "CDLIB_ALARMS": "missing-alarm"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert bad.returncode == 4 and "missing-alarm" in bad.stdout + bad.stderr
