"""The HAProxy router against a real HAProxy in front of sample-app processes."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from cdlib.traffic.base import DrainTimeoutError, RouterInputError, Target
from cdlib.traffic.haproxy import HAProxyPersistence, HAProxyRouter
from cdlib.traffic.haproxy_config import HAProxySite, render_config
from cdlib.traffic.haproxy_process import HAProxyProcess
from cdlib.traffic.haproxy_runtime import RuntimeClient
from cdlib.traffic.local import LocalHAProxy
from tests.integration.traffic.traffic_helpers import (
    App,
    HAProxyEnv,
    SampleApp,
    free_port,
    sample_apps,
)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def _versions(url: str, n: int) -> Counter[str]:
    return Counter(_get(url + "version").strip() for _ in range(n))


def _register_all(env: HAProxyEnv, apps: dict[str, list[SampleApp]]) -> None:
    for group, members in apps.items():
        env.router.register(group, [a.target for a in members])
        assert env.router.wait_healthy(group, timeout=10).healthy


def test_register_switch_weights_read_back(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    _register_all(haproxy, apps)
    assert router.targets("blue") == tuple(sorted(a.target for a in apps["blue"]))
    # Registered servers start at weight 0: nothing is live yet.
    assert router.state().live is None

    state = router.switch("blue")
    assert state.live == "blue" and state.weights == {"blue": 100, "green": 0}
    assert _versions(haproxy.url, 10) == Counter({"1.0.0": 10})

    state = router.switch("green")
    assert state.live == "green"
    assert _versions(haproxy.url, 10) == Counter({"2.0.0": 10})

    state = router.set_weights({"blue": 50, "green": 50})
    assert state.live is None and state.weights == {"blue": 50, "green": 50}
    seen = _versions(haproxy.url, 40)
    # roundrobin with equal weights alternates exactly.
    assert seen == Counter({"1.0.0": 20, "2.0.0": 20})

    # A fresh router reads the same state from HAProxy alone.
    fresh = HAProxyRouter(RuntimeClient(haproxy.site.admin_socket))
    assert fresh.state() == state


def test_register_is_idempotent_and_deregister_unknown_is_no_error(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    target = apps["blue"][0].target
    router.register("blue", [target])
    before = len(router.runtime.commands)
    router.register("blue", [target])
    sent = router.runtime.commands[before:]
    assert not [c for c in sent if not c.startswith("show ")], sent
    router.deregister("green", [Target("127.0.0.1", 9)])
    router.deregister("blue", [target])
    assert router.targets("blue") == ()


def test_invalid_input_is_refused_before_any_change(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    _register_all(haproxy, apps)
    router.switch("blue")
    before = len(router.runtime.commands)
    with pytest.raises(RouterInputError, match="unknown group 'red'"):
        router.set_weights({"red": 10})
    with pytest.raises(RouterInputError, match=r"not in 0\.\.256"):
        router.set_weights({"green": 300})
    with pytest.raises(RouterInputError, match="all groups have weight 0"):
        router.set_weights({"blue": 0, "green": 0})
    assert not [c for c in router.runtime.commands[before:] if not c.startswith("show ")]
    assert router.state().live == "blue"


def test_switch_to_group_without_servers_is_refused(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    router.register("blue", [apps["blue"][0].target])
    with pytest.raises(RouterInputError, match="'green' has no server that is up"):
        router.switch("green")


def test_wait_healthy_reports_why(haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]) -> None:
    router = haproxy.router
    dead = Target("127.0.0.1", 9)  # discard port: nothing listens on loopback
    with sample_apps({"green": ("2.0.0", 1)}, env={"APP_FAIL_MODE": "health"}) as sick_apps:
        sick = sick_apps["green"][0]
        router.register("green", [sick.target, apps["green"][0].target, dead])
        report = router.wait_healthy("green", timeout=3, interval=0.2)
    assert report.timed_out and not report.healthy
    bad = {h.target: h for h in report.unhealthy}
    assert set(bad) == {sick.target, dead}, report.describe()
    text = report.describe()
    assert "wrong status" in text, text
    # HAProxy names a closed port "Connection refused" once a check completed, and only
    # "Layer4 connection problem" while its last check's detail is not yet filled in.
    dead_why = f"{bad[dead].state} {bad[dead].reason}".lower()
    assert "refused" in dead_why or "layer4 connection problem" in dead_why, text


def test_drain_waits_for_open_sessions(haproxy: HAProxyEnv, thread_app: App) -> None:
    router = haproxy.router
    router.register("blue", [thread_app.target])
    assert router.wait_healthy("blue", timeout=10).healthy
    router.switch("blue")
    result: list[str] = []
    slow = threading.Thread(target=lambda: result.append(_get(haproxy.url + "slow/1.5")))
    slow.start()
    try:
        deadline = time.monotonic() + 5
        # The weighted backend, or blue's own one (a switch routes there).
        while not any(s.scur for be in ("app", "app_blue") for s in router.runtime.show_stat(be)):
            assert time.monotonic() < deadline, "the slow request never reached a server"
            time.sleep(0.02)
        with pytest.raises(DrainTimeoutError, match="1 sessions"):
            router.drain("blue", router.targets("blue"), timeout=0.3)
        router.drain("blue", router.targets("blue"), timeout=5)
    finally:
        slow.join(10)
    # Draining let the open request finish.
    assert result == ["1.0.0"]
    assert router.state().weights["blue"] == 0


def test_metrics_count_responses_and_5xx(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    _register_all(haproxy, apps)
    router.switch("green")
    before = router.metrics()
    _versions(haproxy.url, 12)
    after = router.metrics()
    assert after["green"].requests - before["green"].requests == 12
    assert after["blue"].requests == before["blue"].requests
    assert after["green"].errors_5xx == 0


def test_changes_survive_restart(haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]) -> None:
    router = haproxy.router
    _register_all(haproxy, apps)
    router.set_weights({"blue": 90, "green": 10})
    router.tag_release("green", "2.0.1")
    haproxy.process.stop()
    haproxy.process.start()
    fresh = HAProxyRouter(
        RuntimeClient(haproxy.site.admin_socket),
        persistence=HAProxyPersistence(
            haproxy.site,
            str(haproxy.config_path),
            str(haproxy.config_path.parent / "releases.json"),
        ),
    )
    assert fresh.state().weights == {"blue": 90, "green": 10}
    assert fresh.targets("green") == tuple(sorted(a.target for a in apps["green"]))
    assert fresh.tagged_release("green") == "2.0.1"
    assert fresh.wait_healthy("blue", timeout=10).healthy


def test_tcp_admin_socket(tmp_path: Path, apps: dict[str, list[SampleApp]]) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    port, admin_port = free_port(), free_port()
    site = HAProxySite(
        bind=f"127.0.0.1:{port}", admin_socket=f"127.0.0.1:{admin_port}", check_inter_ms=200
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_config(site))
    proc = HAProxyProcess(str(config), site.admin_socket)
    proc.start()
    try:
        router = HAProxyRouter(RuntimeClient(site.admin_socket), check_inter_ms=200)
        router.register("green", [apps["green"][0].target])
        assert router.wait_healthy("green", timeout=10).healthy
        assert router.switch("green").live == "green"
        assert _versions(f"http://127.0.0.1:{port}/", 3) == Counter({"2.0.0": 3})
    finally:
        proc.stop()


def test_weights_are_shares_of_requests_whatever_the_group_sizes(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    router.register("blue", [a.target for a in apps["blue"]])  # two servers
    router.register("green", [apps["green"][0].target])  # one server
    assert router.wait_healthy("blue", timeout=10).healthy
    assert router.wait_healthy("green", timeout=10).healthy
    state = router.set_weights({"blue": 50, "green": 50})
    assert dict(state.weights) == {"blue": 50, "green": 50}
    # Smooth weighted round robin: 40 requests are whole cycles, so exactly half each.
    assert _versions(haproxy.url, 40) == Counter({"1.0.0": 20, "2.0.0": 20})
    # Per-server weights read back as shares of the whole.
    fresh = HAProxyRouter(RuntimeClient(haproxy.site.admin_socket))
    assert fresh.state() == state
    # A green server added to the live group takes part of green's share, not more.
    router.register("green", [apps["green"][1].target], timeout=10)
    assert dict(router.state().weights) == {"blue": 50, "green": 50}
    # Draining one blue server keeps blue's share on the other.
    router.drain("blue", [apps["blue"][0].target], timeout=5)
    assert dict(router.state().weights) == {"blue": 50, "green": 50}
    assert _versions(haproxy.url, 40) == Counter({"1.0.0": 20, "2.0.0": 20})


def test_another_process_can_reload_and_stop_a_local_haproxy(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    bind = f"127.0.0.1:{free_port()}"
    first = LocalHAProxy(tmp_path, bind=bind)
    first.start()
    try:
        # A second handle on the same directory, as a later `cdlib rollback` would make.
        later = LocalHAProxy(tmp_path, bind=bind)
        assert later.running()
        assert later.process.pid == first.process.pid
        worker = later.process.worker_pid()
        later.process.reload()
        assert later.process.worker_pid() != worker
        later.stop()
        assert not later.running()
        assert later.process.pid is None
        assert not (tmp_path / "admin.sock").exists()
    finally:
        first.stop()
