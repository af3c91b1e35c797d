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
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import cdlib
from cdlib.checks import (
    CONTROL,
    FailureKind,
    FileCheck,
    HttpCheck,
    ProcessCheck,
    Retry,
    ServiceCheck,
    run_check,
)
from cdlib.checks.probes import host_http_command, parse_host_http
from cdlib.checks.suite import SuiteHost, run_suite
from cdlib.checks.yamlsuite import parse_suite
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
retry: {attempts: 40, timeout: 60, backoff: 0.1, max_backoff: 0.5}
checks:
  - name: health
    http: "http://{{ address }}:8080/health"
    json_equals: {"$.status": "ok", "$.version": "1.2.3"}
    header_equals: {X-App-Version: "1.2.3"}
  - name: health from the host
    http: "http://{{ address }}:8080/version"
    body_contains: "1.2.3"
    on: host
    timeout: 30
  - tcp: "{{ address }}:8080"
    on: host
    timeout: 30
  - process: 'app\\.py --instance={{ address }}$'
    timeout: 30
  - file: /srv/app.log
    contains: "listening on {{ address }}:8080"
    timeout: 30
  - command: "cat /srv/app.log"
    stdout_regex: "sampleapp 1\\\\.2\\\\.3"
    timeout: 30
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
    # Generous per-attempt timeouts: the machine running the tests may be very busy.
    mine = ProcessCheck(rf"app\.py --instance={re.escape(fleet.host(1).address)}$", timeout=60)
    assert run_check(mine, conns["host1"]).ok
    assert run_check(FileCheck("/srv/app.log", timeout=60), conns["host1"]).ok
    # /srv is private per host
    other = run_check(FileCheck("/srv/app.log", timeout=60), conns["host2"])
    assert other.attempts[-1].outcome.kinds == {FailureKind.MISSING}
    # A host without python3 gets the bash /dev/tcp request; run that path over SSH too.
    check = HttpCheck(url(fleet, 1), json_equals={"$.version": "1.2.3"})
    cmd, stdin = host_http_command(check, 30.0, prefer="bash")
    resp = parse_host_http(conns["host1"].run(cmd, stdin=stdin, timeout=60), 30.0)
    assert check.evaluate(resp).ok, resp  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["control", "host"])
def test_app_started_two_seconds_late_passes_after_retries(
    fleet: Fleet, inv: Inventory, conns: dict[str, Connection], where: str
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
    starter = connection_for(inv.get("host2"))  # its own connection: used from a timer thread
    for c in (starter, conns["host2"]):
        # Log in first, so the check's first attempt is not slowed by the SSH handshake
        # into the moment the app comes up.
        assert c.run("true", timeout=60).ok
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
    retryable = {FailureKind.CONNECT, FailureKind.TIMEOUT}
    assert all(a.outcome.kinds <= retryable for a in rep.attempts), rep.render()


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
    rep = run_check(HttpCheck(url(fleet, 3), latency_budget=0.2, timeout=60), conns["host3"])
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


@pytest.fixture
def sysv_service() -> Iterator[str]:
    """A SysV init script whose ``status`` says running when /srv/<name>.running exists."""
    if shutil.which("service") is None or Path("/run/systemd/system").is_dir():
        pytest.skip("needs the SysV 'service' command without a running systemd")
    name = f"cdlib-checks-{uuid.uuid4().hex[:8]}"
    script = Path("/etc/init.d") / name
    script.write_text(
        "#!/bin/sh\n"
        f'case "$1" in status) [ -e /srv/{name}.running ] && exit 0; exit 3;; esac\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    try:
        yield name
    finally:
        script.unlink()


def test_service_check_through_ssh(
    fleet: Fleet, conns: dict[str, Connection], sysv_service: str
) -> None:
    fleet.path(1, f"/srv/{sysv_service}.running").write_text("")  # only host1 runs it
    assert run_check(ServiceCheck(sysv_service, timeout=60), conns["host1"]).ok
    rep = run_check(ServiceCheck(sysv_service, timeout=60), conns["host2"])
    assert rep.reason == f"{sysv_service} is inactive (service), expected active"
    assert run_check(ServiceCheck(sysv_service, running=False), conns["host2"]).ok


def test_run_suite_library_on_real_hosts(fleet: Fleet, conns: dict[str, Connection]) -> None:
    start_app(conns["host1"], fleet.host(1).address)
    wait_up(fleet, 1)
    suite = parse_suite(
        "suite: lib\n"
        "checks:\n"
        "  - http: 'http://{{ address }}:8080/health'\n"
        "  - file: /srv/app.log\n",
        "lib.yml",
    )
    hosts = [
        SuiteHost(f"host{k}", conns[f"host{k}"], {"ansible_host": fleet.host(k).address})
        for k in (1, 2)
    ]
    rep = run_suite(suite, hosts)
    assert rep.host_ok("host1") and rep.failed_hosts == ["host2"]
    http2, file2 = rep.hosts["host2"]
    assert http2.attempts[-1].outcome.kinds == {FailureKind.CONNECT}
    assert file2.reason == "/srv/app.log does not exist"
    assert json.loads(json.dumps(rep.to_dict()))["hosts"]["host1"][0]["ok"] is True
