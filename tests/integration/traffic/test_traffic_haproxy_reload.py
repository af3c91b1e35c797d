"""Render + validate + graceful reload of a real HAProxy, only when the config changed."""

from __future__ import annotations

import dataclasses
import urllib.request

import pytest

from cdlib.connections.local import LocalConnection
from cdlib.traffic.haproxy_config import ConfigError, reload_if_changed
from tests.integration.traffic.traffic_helpers import HAProxyEnv, Load, SampleApp


def test_reload_only_when_changed_and_never_with_a_bad_config(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    conn = LocalConnection()
    path = str(haproxy.config_path)
    router = haproxy.router
    router.register("blue", [a.target for a in apps["blue"]])
    assert router.wait_healthy("blue", timeout=10).healthy
    router.switch("blue")
    worker = haproxy.process.worker_pid()
    reload = haproxy.process.reload_command()

    # The router keeps the file in step with runtime state: rendering the same
    # site gives the same text, so nothing is reloaded.
    current = haproxy.config_path.read_text()
    assert not reload_if_changed(conn, path, current, reload_command=reload)
    assert haproxy.process.worker_pid() == worker

    # A broken config is refused by haproxy -c and never installed.
    with pytest.raises(ConfigError, match="haproxy -c rejected"):
        reload_if_changed(conn, path, current + "\nbackend\n", reload_command=reload)
    assert haproxy.config_path.read_text() == current
    assert haproxy.process.worker_pid() == worker

    # A real change under load: installed, reloaded gracefully, nothing dropped.
    site = dataclasses.replace(haproxy.site, timeout_client_ms=45000)
    changed = router.rendered_config(site)
    load = Load(haproxy.port, threads=2, max_requests=2000, max_seconds=60).start()
    try:
        load.wait_for(100)
        assert reload_if_changed(conn, path, changed, reload_command=reload)
        new_worker = haproxy.process.wait_worker(not_pid=worker)
        load.wait_for(load.total + 200)
    finally:
        result = load.stop()
    assert new_worker != worker
    assert "timeout client 45000ms" in haproxy.config_path.read_text()
    assert result.failures == [], result.failures[:5]
    # Weights came back from the rendered file and the server-state file.
    assert router.state().live == "blue"
    with urllib.request.urlopen(haproxy.url + "version", timeout=5) as resp:
        assert resp.read().strip() == b"1.0.0"
