"""AWS compute provisioning on moto server: a whole environment, idempotence, bad input.

Write calls are counted at botocore's single entry point, so every client the tasks
build is counted; a converged environment must cost none.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest
import yaml

import cdlib
from cdlib import Host, Inventory, Play, tasks
from cdlib.aws.compute import (
    AutoScalingGroupSpec,
    IngressRule,
    LaunchTemplateSpec,
    SecurityGroupSpec,
)
from cdlib.cli.main import main
from cdlib.inventory.model import Group
from cdlib.traffic.elbv2_provision import LoadBalancerSpec, TargetGroupSpec, ensure_load_balancer
from tests.integration.traffic.traffic_helpers import Aws

REPO = Path(__file__).resolve().parents[3]
AMI = "ami-12c6146b"
_READS = ("Describe", "Get", "List")


@pytest.fixture
def writes(aws: Aws, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count every AWS write call made in this process; point boto3 at moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    counted: Counter[str] = Counter()
    real = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        if not operation.startswith(_READS):
            counted[operation] += 1
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    yield counted


def _cli(*args: str) -> tuple[int, str]:
    """Run the CLI in this process (so writes are counted); stdout as JSON events."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([*args, "--format", "json"])
    return rc, out.getvalue()


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _changes(out: str) -> str:
    return "\n".join(
        c for e in _events(out) if e["event"] == "task_result" for c in e["changes"]
    ) + "\n".join(e.get("msg", "") for e in _events(out))


def _env_vars(aws: Aws, tmp_path: Path, env: str) -> Path:
    path = tmp_path / f"{env}.yml"
    path.write_text(yaml.safe_dump({"env": env, "vpc_id": aws.vpc, "subnets": list(aws.subnets)}))
    return path


def _group(aws: Aws, name: str) -> dict[str, Any]:
    import boto3

    client = boto3.session.Session(region_name="us-east-1").client("autoscaling")
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return dict(groups["AutoScalingGroups"][0]) if groups["AutoScalingGroups"] else {}


def test_one_playbook_creates_staging_and_production_and_reruns_change_nothing(
    aws: Aws, writes: Counter[str], tmp_path: Path
) -> None:
    playbook = str(REPO / "playbooks" / "aws_environment.py")
    tag = uuid.uuid4().hex[:6]
    for inventory, env, size in (("staging", f"s{tag}", 1), ("production", f"p{tag}", 3)):
        args = ("run", playbook, "-i", str(REPO / "inventories" / "aws" / inventory))
        extra = ("-e", f"@{_env_vars(aws, tmp_path, env)}")

        # Check mode on an empty account predicts every creation and writes nothing.
        rc, out = _cli(*args, *extra, "--check")
        assert rc == 0, out
        assert sum(writes.values()) == 0, writes
        for what in (
            f"create security group {env}-web-lb",
            f"create security group {env}-web-app",
            f"create launch template {env}-web (version 1)",
            f"created load balancer {env}-web",
            f"created target group {env}-web-green",
            "created listener :80",
            "created listener :8081",
            f"create Auto Scaling group {env}-web-blue ({size} instances",
            f"create Auto Scaling group {env}-web-green (0 instances",
        ):
            assert what in _changes(out), (what, out)

        rc, out = _cli(*args, *extra)
        assert rc == 0, out
        assert writes["CreateAutoScalingGroup"] == 2 and writes["CreateLaunchTemplate"] == 1
        blue = _group(aws, f"{env}-web-blue")
        assert blue["DesiredCapacity"] == size and blue["HealthCheckType"] == "ELB"
        assert blue["LaunchTemplate"]["Version"] == "1"
        assert f"{env}-web-blue: {size} of {size} instances ready" in _changes(out)
        lbs = aws.elbv2.describe_load_balancers(Names=[f"{env}-web"])["LoadBalancers"]
        listeners = aws.elbv2.describe_listeners(LoadBalancerArn=lbs[0]["LoadBalancerArn"])
        by_port = {
            li["Port"]: li["DefaultActions"][0]["TargetGroupArn"] for li in listeners["Listeners"]
        }
        green_tg = aws.elbv2.describe_target_groups(Names=[f"{env}-web-green"])["TargetGroups"]
        assert by_port[8081] == green_tg[0]["TargetGroupArn"] and by_port[80] != by_port[8081]

        # A re-run: nothing changed, and not one write call.
        writes.clear()
        rc, out = _cli(*args, *extra)
        assert rc == 0, out
        assert sum(writes.values()) == 0, writes
        assert not [e for e in _events(out) if e.get("changed")], out
        writes.clear()


def _local() -> Inventory:
    host = Host("localhost", {"ansible_connection": "local"}, ["aws"])
    return Inventory(
        [host], {"all": Group("all", children=["aws"]), "aws": Group("aws", hosts=["localhost"])}
    )


def _run(*task: Any, check: bool = False) -> Any:
    play = Play("aws", hosts="aws")
    for t in task:
        play.task(t)
    return cdlib.run(play, _local(), check=check)


def _failure(res: Any) -> str:
    failed = [r for r in res.results if r.status.value == "failed"]
    assert failed, "expected a failure"
    return str(failed[0].msg)


def _tg(aws: Aws, name: str) -> Any:
    return ensure_load_balancer(
        aws.elbv2,
        LoadBalancerSpec(
            name=name,
            vpc_id=aws.vpc,
            subnets=aws.subnets,
            target_groups=(TargetGroupSpec("blue", f"{name}-b", 8080, target_type="instance"),),
            default_group="blue",
        ),
    )


def test_launch_template_new_version_only_on_change_and_user_data_diff(
    aws: Aws, writes: Counter[str], tmp_path: Path
) -> None:
    name = "lt-" + uuid.uuid4().hex[:6]
    spec = LaunchTemplateSpec(name, AMI, "t3.micro", user_data="#!/bin/sh\necho 1\n")
    assert _run(tasks.launch_template(spec)).ok
    writes.clear()
    again = _run(tasks.launch_template(spec))
    assert again.ok and again.changed() == set() and sum(writes.values()) == 0
    changed = LaunchTemplateSpec(name, AMI, "t3.micro", user_data="#!/bin/sh\necho 2\n")
    play = Play("aws", hosts="aws")
    play.task(tasks.launch_template(changed))
    checked = cdlib.run(play, _local(), check=True, diff=True)
    [res] = [r for r in checked.results if r.task == f"launch_template {name}"]
    assert res.changes == [f"launch template {name}: version 2 (UserData)"]
    assert res.diff and "-echo 1" in res.diff and "+echo 2" in res.diff
    assert sum(writes.values()) == 0
    real = _run(tasks.launch_template(changed))
    [res] = [r for r in real.results if r.task == f"launch_template {name}"]
    assert res.msg.endswith("version 2")
    assert writes["CreateLaunchTemplateVersion"] == 1


def test_security_group_rules_converge_exactly(aws: Aws, writes: Counter[str]) -> None:
    name = "sgt-" + uuid.uuid4().hex[:6]
    lb = SecurityGroupSpec(f"{name}-lb", aws.vpc, "lb", (IngressRule(80, cidr="0.0.0.0/0"),))
    app = SecurityGroupSpec(
        f"{name}-app", aws.vpc, "app", (IngressRule(8080, source_group=f"{name}-lb"),)
    )
    assert _run(tasks.security_group(lb), tasks.security_group(app)).ok
    writes.clear()
    assert _run(tasks.security_group(lb), tasks.security_group(app)).changed() == set()
    assert sum(writes.values()) == 0
    # A rule added by hand is revoked; the spec's rule stays.
    gid = aws.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{name}-app"]}]
    )["SecurityGroups"][0]["GroupId"]
    aws.ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    res = _run(tasks.security_group(app))
    assert res.ok and writes["RevokeSecurityGroupIngress"] == 1
    perms = aws.ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"]
    assert [p["FromPort"] for p in perms] == [8080]


def test_bad_input_names_the_resource_and_a_rerun_converges(aws: Aws, writes: Counter[str]) -> None:
    name = "bad-" + uuid.uuid4().hex[:6]
    missing_ami = LaunchTemplateSpec(name, "ami-0000dead", "t3.micro")
    res = _run(tasks.launch_template(missing_ami))
    assert not res.ok and "AMI ami-0000dead not found" in _failure(res)
    bad_type = LaunchTemplateSpec(name, AMI, "t9.nope")
    res = _run(tasks.launch_template(bad_type))
    assert not res.ok and "instance type t9.nope refused" in _failure(res)
    assert sum(writes.values()) == 0  # nothing half-created

    lt = LaunchTemplateSpec(name, AMI, "t3.micro")
    group = AutoScalingGroupSpec(
        name, name, aws.subnets, min_size=1, max_size=2, target_groups=(f"{name}-b",)
    )
    no_subnet = AutoScalingGroupSpec(
        name, name, ("subnet-0000dead",), 1, 2, target_groups=(f"{name}-b",)
    )
    res = _run(tasks.launch_template(lt), tasks.auto_scaling_group(no_subnet))
    assert not res.ok and "subnet subnet-0000dead not found" in _failure(res)
    res = _run(tasks.auto_scaling_group(group))
    assert not res.ok and f"target group {name}-b not found" in _failure(res)
    assert not _group(aws, name)

    # The missing target group appears; the same run now converges.
    _tg(aws, name)
    res = _run(tasks.auto_scaling_group(group, poll_interval=0.2))
    assert res.ok, [r.msg for r in res.results]
    writes.clear()
    assert _run(tasks.auto_scaling_group(group)).changed() == set()
    assert sum(writes.values()) == 0


def test_scale_in_deregisters_departed_instances_and_sizes_belong_to_releases(
    aws: Aws, writes: Counter[str]
) -> None:
    name = "asg-" + uuid.uuid4().hex[:6]
    handles = _tg(aws, name)
    lt = LaunchTemplateSpec(name, AMI, "t3.micro")
    spec = AutoScalingGroupSpec(
        name, name, aws.subnets, min_size=1, max_size=3, desired=2, target_groups=(f"{name}-b",)
    )
    assert _run(tasks.launch_template(lt), tasks.auto_scaling_group(spec, poll_interval=0.2)).ok
    import boto3

    asg = boto3.session.Session(region_name="us-east-1").client("autoscaling")
    asg.update_auto_scaling_group(AutoScalingGroupName=name, DesiredCapacity=1)  # a release
    members = {i["InstanceId"] for i in _group(aws, name)["Instances"]}
    tg_arn = handles.target_groups["blue"]
    writes.clear()
    res = _run(tasks.auto_scaling_group(spec, poll_interval=0.2))
    assert res.ok
    assert writes == Counter({"DeregisterTargets": 1})  # desired stays at 1: the release's
    registered = {
        d["Target"]["Id"]
        for d in aws.elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    }
    assert registered == members
    writes.clear()
    assert _run(tasks.auto_scaling_group(spec)).changed() == set()
    assert sum(writes.values()) == 0


def test_wait_times_out_naming_the_instances_not_ready(aws: Aws, writes: Counter[str]) -> None:
    name = "slow-" + uuid.uuid4().hex[:6]
    handles = _tg(aws, name)
    lt = LaunchTemplateSpec(name, AMI, "t3.micro")
    spec = AutoScalingGroupSpec(name, name, aws.subnets, 1, 2, target_groups=(f"{name}-b",))
    assert _run(tasks.launch_template(lt), tasks.auto_scaling_group(spec, poll_interval=0.2)).ok
    # An instance that drops out of its target group is not ready, however the group sees it.
    [inst] = _group(aws, name)["Instances"]
    aws.elbv2.deregister_targets(
        TargetGroupArn=handles.target_groups["blue"], Targets=[{"Id": inst["InstanceId"]}]
    )
    res = _run(tasks.auto_scaling_group(spec, wait_timeout=0.5, poll_interval=0.1))
    msg = _failure(res)
    assert f"{name}: 0 of 1 instances ready" in msg
    assert f"{inst['InstanceId']} (unregistered in {name}-b)" in msg


def test_playbook_with_a_missing_ami_exits_2_naming_it_then_converges(
    aws: Aws, writes: Counter[str], tmp_path: Path
) -> None:
    env = "m" + uuid.uuid4().hex[:6]
    args = (
        "run",
        str(REPO / "playbooks" / "aws_environment.py"),
        "-i",
        str(REPO / "inventories" / "aws" / "staging"),
        "-e",
        f"@{_env_vars(aws, tmp_path, env)}",
    )
    rc, out = _cli(*args, "-e", "ami_id=ami-0000dead")
    assert rc == 2, out
    failed = [e for e in _events(out) if e.get("status") == "failed"]
    assert failed[0]["task"] == f"launch_template {env}-web"
    assert f"launch template {env}-web: AMI ami-0000dead not found" in failed[0]["msg"]
    assert writes["CreateLaunchTemplate"] == 0
    rc, out = _cli(*args)
    assert rc == 0, out
    writes.clear()
    rc, out = _cli(*args)
    assert rc == 0 and sum(writes.values()) == 0, (out, writes)
