"""Release strategies through the nginx router: a real nginx and real sample-app
processes, under steady bounded load (keep-alive and new connections), locally and over
SSH on the test fleet."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import cdlib
from cdlib.checks import HttpCheck, Retry
from cdlib.checks.suite import Suite
from cdlib.release import BlueGreen, Canary, CanaryStep, History, Rolling, Thresholds, rollback
from cdlib.release.ops import status
from cdlib.release.routers import spec_from_json
from cdlib.traffic.nginx import NginxSpec
from tests.fleet import Fleet
from tests.integration.traffic.traffic_helpers import Load, free_port

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "playbooks"))

from sampleapp_local import deploy as deploy_play  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")


@dataclass
class Env:
    inventory: Path
    state: str
    lb_port: int
    spec: NginxSpec
    address: str = "127.0.0.1"

    @property
    def lb(self) -> str:
        return f"{self.address}:{self.lb_port}"


def _inventory(tmp_path: Path) -> tuple[Path, list[Path]]:
    ports = {name: free_port() for name in ("blue1", "blue2", "green1", "green2")}
    inv = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_host": "127.0.0.1"},
            "children": {
                g: {
                    "hosts": {
                        f"{g}{i}": {
                            "app_port": ports[f"{g}{i}"],
                            "app_dir": str(tmp_path / f"{g}{i}"),
                        }
                        for i in (1, 2)
                    }
                }
                for g in ("blue", "green")
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return path, [tmp_path / n for n in ports]


def _stop_apps(dirs: list[Path]) -> None:
    for d in dirs:
        pid = d / "pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.read_text()), signal.SIGKILL)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    inv, dirs = _inventory(tmp_path)
    port = free_port()
    spec = NginxSpec(
        workdir=str(tmp_path / "nginx"), bind=f"127.0.0.1:{port}", worker_shutdown_timeout=5
    )
    try:
        yield Env(inv, str(tmp_path / "state"), port, spec)
    finally:
        router = spec.build()
        if router.running():
            router.stop()
        _stop_apps(dirs)


def _bluegreen(env: Env, version: str, fail: str = "") -> BlueGreen:
    retry = Retry(attempts=20, timeout=10.0, backoff=0.1, max_backoff=0.5)
    return BlueGreen(
        app="demo",
        version=version,
        router=env.spec,
        state_dir=env.state,
        deploy=lambda t: deploy_play(t, fail_mode=fail),
        post_checks=Suite(
            "post",
            (
                HttpCheck(
                    url=f"http://{env.lb}/version",
                    body_contains="{{ release_version }}",
                    retry=retry,
                ),
            ),
        ),
        health_timeout=15,
    )


def _failed(res: cdlib.RunResult) -> list[str]:
    return [r.msg for r in res.results if r.host == "release:demo" and r.status.value == "failed"]


def _load(env: Env) -> Load:
    return Load(
        env.lb_port, threads=4, max_requests=2_000_000, max_seconds=120, retry_stale=True
    ).start()


def test_bluegreen_release_and_rollback_on_nginx_drop_nothing(env: Env) -> None:
    # The spec starts nginx (ensure_running) on the first real release.
    first = _bluegreen(env, "1.0.0").run(str(env.inventory))
    assert first.ok, _failed(first)
    assert env.spec.build().state().live == "blue"
    load = _load(env)
    try:
        load.wait_for(200)
        second = _bluegreen(env, "1.1.0").run(str(env.inventory))
        assert second.ok, _failed(second)
        assert env.spec.build().state().live == "green"
        load.wait_for(load.total + 200)
        rec = rollback("demo", state_dir=env.state)  # rebuilt from the recorded spec
        load.wait_for(load.total + 200)
    finally:
        result = load.stop()
    assert result.failures == [], result.failures[:5]
    assert set(result.ok) == {"1.0.0", "1.1.0"}, result.ok
    assert rec.new_group == "blue" and env.spec.build().state().live == "blue"
    st = status("demo", state_dir=env.state)
    assert st.live == "blue" and st.releases == {"blue": "1.0.0", "green": "1.1.0"}


def test_canary_on_nginx_fails_a_bad_build_from_the_access_log(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=lambda t: deploy_play(t, fail_mode="errors"),
        steps=[CanaryStep(10, pause=20.0), 100],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=20),
        sample_interval=1.0,
        health_timeout=15,
    )
    load = Load(env.lb_port, threads=2, max_requests=2_000_000, max_seconds=90).start()
    try:
        load.wait_for(300)
        res = canary.run(str(env.inventory))
        load.wait_for(load.total + 100)
    finally:
        load.stop()
    assert not res.ok
    rec = History("demo", state_dir=env.state).latest()
    assert rec is not None and rec.outcome == "rolled_back" and "5xx rate" in rec.reason
    rates = [s for s in rec.samples if s["metric"] == "error_rate"]
    failed = [s for s in rates if s["verdict"] == "fail"]
    assert failed and failed[0]["weights"] == {"blue": 90, "green": 10}
    assert env.spec.build().state().live == "blue"


def test_canary_steps_and_rolling_on_nginx_drop_nothing(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        steps=[CanaryStep(10, pause=2.0), CanaryStep(50, pause=2.0), 100],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=20),
        sample_interval=1.0,
        health_timeout=15,
    )
    rolling = Rolling(
        app="demo",
        version="2.1.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        group="green",
        batch=1,
        health_timeout=15,
    )
    load = _load(env)
    try:
        load.wait_for(200)
        res = canary.run(str(env.inventory))
        assert res.ok, _failed(res)
        assert env.spec.build().state().live == "green"
        res = rolling.run(str(env.inventory))
        assert res.ok, _failed(res)
        load.wait_for(load.total + 200)
    finally:
        result = load.stop()
    assert result.failures == [], result.failures[:5]
    assert {"1.0.0", "2.0.0", "2.1.0"} <= set(result.ok), result.ok


def test_spec_round_trips_through_the_registry() -> None:
    spec = NginxSpec(workdir="/var/lib/cdlib/lb", bind="127.0.0.1:8081")
    again = spec_from_json(spec.to_json())
    assert isinstance(again, NginxSpec) and again == spec
    with pytest.raises(ValueError, match=r"unknown router kind 'nope'.*nginx"):
        spec_from_json({"kind": "nope"})


@pytest.mark.skipif(os.geteuid() != 0, reason="the fleet needs root")
def test_bluegreen_release_over_ssh_on_the_fleet_nginx(fleet: Fleet, tmp_path: Path) -> None:
    """nginx runs on fleet host 1 (in its namespace), driven over SSH; the apps run here."""
    fleet.reset()
    inv, dirs = _inventory(tmp_path)
    fleet_inv = cdlib.load_inventory([fleet.inventory_yaml(tmp_path / "fleet.yml")])
    host = fleet_inv.hosts["host1"]
    conn_vars = {
        k: v
        for k, v in host.vars.items()
        if k.startswith(("ansible_", "cdlib_")) and "pass" not in k and isinstance(v, str | int)
    }
    port = free_port()
    spec = NginxSpec(
        workdir="/var/lib/cdlib/nginx",
        bind=f"{fleet.host(1).address}:{port}",
        worker_shutdown_timeout=5,
        host="host1",
        host_vars=conn_vars,
    )
    env = Env(inv, str(tmp_path / "state"), port, spec, fleet.host(1).address)
    router = spec.build()
    assert router.conn.transport == "ssh"
    try:
        first = _bluegreen(env, "1.0.0").run(str(inv))
        assert first.ok, _failed(first)
        load = Load(
            port,
            threads=4,
            max_requests=100_000,
            max_seconds=90,
            retry_stale=True,
            host=fleet.host(1).address,
        ).start()
        try:
            load.wait_for(100)
            res = _bluegreen(env, "1.1.0").run(str(inv))
            assert res.ok, _failed(res)
            load.wait_for(load.total + 100)
        finally:
            result = load.stop()
        assert result.failures == [], result.failures[:5]
        assert set(result.ok) == {"1.0.0", "1.1.0"}
        assert router.state().live == "green"
        # The files are on the fleet host, not here.
        assert fleet.path(1, "/var/lib/cdlib/nginx/nginx.conf").exists()
    finally:
        if router.running():
            router.stop()
        _stop_apps(dirs)
