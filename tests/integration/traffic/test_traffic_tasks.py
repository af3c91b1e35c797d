"""The provisioning tasks in a play: haproxy_config on a real HAProxy, elbv2 on moto."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import cdlib
from cdlib import Host, Inventory, Play
from cdlib.inventory.model import Group
from cdlib.tasks.traffic import elbv2_load_balancer, haproxy_config
from cdlib.traffic.elbv2_provision import LoadBalancerSpec, RuleSpec, TargetGroupSpec
from cdlib.traffic.haproxy_config import ServerEntry
from tests.integration.traffic.traffic_helpers import AWS, Aws, HAProxyEnv, SampleApp


def _local() -> Inventory:
    host = Host("lb1", {"ansible_connection": "local"}, ["lb"])
    return Inventory(
        [host], {"all": Group("all", children=["lb"]), "lb": Group("lb", hosts=["lb1"])}
    )


def test_haproxy_config_task_reloads_only_on_change_and_keeps_runtime_weights(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    servers = [
        ServerEntry(group, app.target, weight=0)
        for group, members in apps.items()
        for app in members
    ]
    site = haproxy.site.with_servers(servers)
    play = Play("lb", hosts="lb")
    play.task(
        haproxy_config(
            site,
            dest=str(haproxy.config_path),
            reload_command=haproxy.process.reload_command(),
        )
    )
    worker = haproxy.process.worker_pid()
    predicted = cdlib.run(play, _local(), check=True, diff=True)
    assert predicted.changed() == {("lb1", f"haproxy_config {haproxy.config_path}")}
    assert "green_" not in haproxy.config_path.read_text()

    first = cdlib.run(play, _local())
    assert first.ok and first.changed()
    worker2 = haproxy.process.wait_worker(not_pid=worker)
    router = haproxy.router
    assert set(router.targets("green")) == {a.target for a in apps["green"]}

    # The router moves traffic (and writes the weights into the file) ...
    assert router.wait_healthy("blue", timeout=10).healthy
    router.switch("blue")
    # ... and re-provisioning neither reverts it nor reloads.
    again = cdlib.run(play, _local())
    assert again.ok and again.changed() == set()
    assert haproxy.process.worker_pid() == worker2
    assert router.state().live == "blue"


def test_haproxy_config_task_creates_a_missing_route_map_and_never_empties_one(
    haproxy: HAProxyEnv, tmp_path: Path
) -> None:
    maps = tmp_path / "maps"
    site = dataclasses.replace(haproxy.site, route_map_dir=str(maps))
    assert site.route_map is not None
    route_map = Path(site.route_map)
    dest = tmp_path / "provisioned.cfg"
    play = Play("lb", hosts="lb")
    play.task(haproxy_config(site, dest=str(dest), reload_command=None))
    predicted = cdlib.run(play, _local(), check=True)
    (change,) = [r for r in predicted.results if r.changed]
    assert f"create empty route map {route_map}" in change.changes
    assert not maps.exists() and not dest.exists()
    # haproxy -c reads the map the config names: it passes only because the map is made.
    first = cdlib.run(play, _local())
    assert first.ok, [r.msg for r in first.results]
    assert route_map.read_text() == "" and dest.is_file()
    # A map that routes somewhere is live state: a lost map file is made again, a
    # filled one is left as it is.
    route_map.write_text("live demo_green\n")
    again = cdlib.run(play, _local())
    assert again.ok and again.changed() == set()
    assert route_map.read_text() == "live demo_green\n"
    route_map.unlink()
    mended = cdlib.run(play, _local())
    assert mended.ok and [r.msg for r in mended.results] == [f"created empty route map {route_map}"]
    assert route_map.read_text() == ""


def test_haproxy_config_task_never_installs_a_rejected_config(
    haproxy: HAProxyEnv, tmp_path: Path
) -> None:
    before = haproxy.config_path.read_text()
    site = dataclasses.replace(haproxy.site, timeout_client_ms=1234)
    play = Play("lb", hosts="lb")
    # A validator that rejects everything stands in for haproxy -c failing.
    play.task(
        haproxy_config(
            site,
            dest=str(haproxy.config_path),
            haproxy="false",
            reload_command="touch " + str(tmp_path / "reloaded"),
        )
    )
    res = cdlib.run(play, _local())
    assert not res.ok
    assert haproxy.config_path.read_text() == before
    assert not (tmp_path / "reloaded").exists()
    assert not list(haproxy.config_path.parent.glob(".haproxy.cfg.cdlib-*"))


def test_elbv2_task_check_mode_then_idempotent(aws: Aws, endpoint: str) -> None:
    name = "task-" + uuid.uuid4().hex[:8]
    spec = LoadBalancerSpec(
        name=name,
        vpc_id=aws.vpc,
        subnets=aws.subnets,
        target_groups=(
            TargetGroupSpec("blue", f"{name}-blue", 8080),
            TargetGroupSpec("green", f"{name}-green", 8080),
        ),
        default_group="blue",
        rules=(RuleSpec(10, "green", host_headers=("beta.example.com",)),),
    )
    play = Play("aws", hosts="lb")
    play.task(elbv2_load_balancer(spec, region=AWS["region"], endpoint_url=endpoint))
    task = f"elbv2_load_balancer {name}"
    predicted = cdlib.run(play, _local(), check=True)
    assert predicted.changed() == {("lb1", task)}
    names = {lb["LoadBalancerName"] for lb in aws.elbv2.describe_load_balancers()["LoadBalancers"]}
    assert name not in names
    real = cdlib.run(play, _local())
    assert real.ok and real.changed() == {("lb1", task)}
    again = cdlib.run(play, _local())
    assert again.ok and again.changed() == set()
