"""Smoke checks against the sample app on real SSH fleet hosts (the issue's "done when").

The app runs inside a host's namespace, bound to the host's own address; checks run from
the control machine and from the host through its SSH connection.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import cdlib
from cdlib.checks import CONTROL, FailureKind, HttpCheck, ProcessCheck, Retry, run_check
from cdlib.connections.base import Connection
from cdlib.connections.factory import connection_for
from cdlib.inventory import Inventory, load_inventory
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "sampleapp" / "app.py"
PORT = 8080


def start_app(conn: Connection, address: str, **env: str) -> None:
    """Start the sample app in the background on the host behind ``conn``."""
    full = {"APP_PORT": str(PORT), "APP_BIND": address, "APP_VERSION": "1.2.3", **env}
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in full.items())
    # --instance is ignored by the app; it makes each host's process recognisable, since
    # fleet hosts share one process table.
    # Every fd of the background process is redirected, or the SSH channel stays open.
    res = conn.run(
        f"cd /srv; {exports} setsid python3 {shlex.quote(str(APP))} "
        f"--instance={address} </dev/null >/srv/app.log 2>&1 &",
        timeout=30,
    )
    assert res.ok, res


@pytest.fixture
def inv(fleet_inventory: Path) -> Inventory:
    """The fleet's inventory, all hosts reset (apps of earlier tests stopped)."""
    return load_inventory([str(fleet_inventory)])


@pytest.fixture
def conns(inv: Inventory) -> Iterator[dict[str, Connection]]:
    """An SSH connection per host, closed at the end."""
    out = {name: connection_for(h) for name, h in inv.hosts.items()}
    try:
        yield out
    finally:
        for c in out.values():
            c.close()


def url(fleet: Fleet, k: int, path: str = "/health") -> str:
    return f"http://{fleet.host(k).address}:{PORT}{path}"


def wait_up(fleet: Fleet, k: int) -> None:
    rep = run_check(HttpCheck(url(fleet, k)), retry=Retry(attempts=200, timeout=15, backoff=0.05))
    assert rep.ok, rep.render()


SUITE = """\
suite: web-smoke
retry: {attempts: 40, timeout: 15, backoff: 0.1, max_backoff: 0.5}
checks:
  - name: health
    http: "http://{{ address }}:8080/health"
    json_equals: {"$.status": "ok", "$.version": "1.2.3"}
    header_equals: {X-App-Version: "1.2.3"}
  - name: health from the host
    http: "http://{{ address }}:8080/version"
    body_contains: "1.2.3"
    on: host
  - tcp: "{{ address }}:8080"
    on: host
  - process: 'app\\.py --instance={{ address }}$'
  - file: /srv/app.log
    contains: "listening on {{ address }}:8080"
  - command: "cat /srv/app.log"
    stdout_regex: "sampleapp 1\\\\.2\\\\.3"
"""


def test_healthy_app_passes_suite_on_each_host_in_parallel(
    fleet: Fleet, inv: Inventory, conns: dict[str, Connection], tmp_path: Path
) -> None:
    for k in (1, 2, 3):
        start_app(conns[f"host{k}"], fleet.host(k).address)
    (tmp_path / "smoke.yml").write_text(SUITE)
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('smoke', hosts='host1:host2:host3')\n"
        "play.task(tasks.smoke(suite='smoke.yml'))\n"
    )
    out = io.StringIO()
    result = cdlib.run(pb, inv, sinks=[cdlib.JsonLinesSink(out)])
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    results = {e["host"]: e for e in events if e["event"] == "task_result"}
    assert set(results) == {"host1", "host2", "host3"}
    for host, ev in results.items():
        assert ev["status"] == "ok", ev["msg"]
        assert ev["task"] == "smoke suite web-smoke"
        assert ev["msg"].startswith("6/6 checks passed"), ev["msg"]
        assert f"on {host}" in ev["msg"]
    assert result.ok
    assert events[-1]["event"] == "recap"
    assert {h: s["ok"] for h, s in events[-1]["hosts"].items()} == {
        "host1": 1,
        "host2": 1,
        "host3": 1,
    }


def test_process_and_file_checks_see_only_their_host(
    fleet: Fleet, conns: dict[str, Connection]
) -> None:
    start_app(conns["host1"], fleet.host(1).address)
    wait_up(fleet, 1)
    mine = ProcessCheck(rf"app\.py --instance={re.escape(fleet.host(1).address)}$")
    assert run_check(mine, conns["host1"]).ok
    from cdlib.checks import FileCheck

    assert run_check(FileCheck("/srv/app.log"), conns["host1"]).ok
    other = run_check(FileCheck("/srv/app.log"), conns["host2"])  # /srv is private per host
    assert other.attempts[-1].outcome.kinds == {FailureKind.MISSING}


@pytest.mark.parametrize("where", ["control", "host"])
def test_app_started_two_seconds_late_passes_after_retries(
    fleet: Fleet, conns: dict[str, Connection], where: str
) -> None:
    check = HttpCheck(
        url(fleet, 2),
        json_equals={"$.version": "1.2.3"},
        retry=Retry(
            attempts=200,
            timeout=20,
            backoff=0.1,
            max_backoff=0.5,
            jitter=0.05,
            retry_on=frozenset({FailureKind.CONNECT, FailureKind.TIMEOUT}),
        ),
    )
    starter = connection_for(load_host(fleet, conns, "host2"))
    timer = threading.Timer(2.0, start_app, args=(starter, fleet.host(2).address))
    timer.start()
    try:
        target = CONTROL if where == "control" else conns["host2"]
        rep = run_check(check, target)
    finally:
        timer.join(timeout=30)
        starter.close()
    assert rep.ok, rep.render()
    assert len(rep.attempts) > 1
    assert rep.attempts[0].outcome.kinds == {FailureKind.CONNECT}
    assert rep.stop_reason == f"passed on attempt {len(rep.attempts)}"
    assert all(a.outcome.kinds <= {FailureKind.CONNECT} for a in rep.attempts)


def load_host(fleet: Fleet, conns: dict[str, Connection], name: str) -> cdlib.Host:
    return load_inventory([str(fleet.inventory_yaml(fleet.workdir / "inv-checks.yml"))]).get(name)


def test_wrong_version_fails_showing_body_and_expected_value(
    fleet: Fleet, inv: Inventory, conns: dict[str, Connection], tmp_path: Path
) -> None:
    start_app(conns["host1"], fleet.host(1).address, APP_VERSION="1.2.3")
    wait_up(fleet, 1)
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "from cdlib.checks import HttpCheck, Retry\n"
        "play = Play('smoke', hosts='host1', vars={'want': '1.3.0'})\n"
        "play.task(tasks.smoke(check=HttpCheck('http://{{ address }}:8080/health',\n"
        "    name='version', json_equals={'$.version': '{{ want }}'},\n"
        "    retry=Retry(attempts=2, backoff=0.05))))\n"
    )
    out = io.StringIO()
    result = cdlib.run(pb, inv, sinks=[cdlib.JsonLinesSink(out)])
    assert result.failed_hosts == ["host1"]
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    (ev,) = [e for e in events if e["event"] == "task_result"]
    assert ev["status"] == "failed"
    msg = ev["msg"]
    assert "$.version: expected '1.3.0', got '1.2.3' (gave up after 2 attempts)" in msg
    assert '"version": "1.2.3"' in msg  # the body received
    assert msg.count("attempt ") >= 2
    assert events[-1]["hosts"]["host1"]["failed"] == 1


def test_latency_budget_exceeded_reports_measured_time(
    fleet: Fleet, conns: dict[str, Connection]
) -> None:
    start_app(conns["host3"], fleet.host(3).address, APP_FAIL_MODE="slow", APP_SLOW_MS="500")
    wait_up(fleet, 3)
    rep = run_check(HttpCheck(url(fleet, 3), latency_budget=0.2), conns["host3"])
    assert not rep.ok
    (failure,) = rep.attempts[-1].outcome.failures
    assert failure.kind is FailureKind.LATENCY
    m = re.search(r"took (\d+\.\d+)s, over the 0\.200s budget", rep.render())
    assert m is not None, rep.render()
    assert float(m.group(1)) >= 0.5  # measured on the host; the app sleeps 500 ms


def test_malformed_yaml_suite_is_rejected_before_anything_runs(
    fleet: Fleet, fleet_inventory: Path, tmp_path: Path
) -> None:
    (tmp_path / "smoke.yml").write_text(
        "suite: web\nchecks:\n  - http: http://{{ address }}:8080/health\n    staus: 200\n"
    )
    (tmp_path / "pb.py").write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('deploy', hosts='web')\n"
        "play.task(tasks.file(path='/srv/deployed', content='yes'))\n"
        "play.task(tasks.smoke(suite='smoke.yml'))\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "cdlib", "run", "pb.py", "-i", str(fleet_inventory)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == cdlib.EXIT_BAD_INPUT, res.stderr
    assert "smoke.yml:4:5: checks[0] (http): unknown key 'staus'; did you mean 'status'?" in (
        res.stderr
    )
    assert "pb.py:4" in res.stderr
    for h in fleet.hosts:  # the file task before the smoke task never ran
        assert not fleet.path(h.index, "/srv/deployed").exists()
