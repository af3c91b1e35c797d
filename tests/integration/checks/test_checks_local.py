"""Checks against real parts on this machine: the sample app, a TLS server, processes, files.

"From the host" here goes through a real LocalConnection (sh -c), the same code path an
SSH connection takes; tests/integration/checks/test_checks_fleet.py does it over SSH.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import cdlib
from cdlib.checks import (
    CONTROL,
    CommandCheck,
    FailureKind,
    FileCheck,
    HttpCheck,
    ProcessCheck,
    Retry,
    TcpCheck,
    run_check,
)
from cdlib.checks.probes import host_http_command, parse_host_http
from cdlib.connections.local import LocalConnection
from tests.sample_app import free_port, run_app

LOCAL = LocalConnection()


@pytest.mark.parametrize("target", [CONTROL, LOCAL], ids=["control", "host"])
def test_sample_app_health_passes(target: object) -> None:
    with run_app({"APP_VERSION": "3.1.0"}) as (_, url):
        check = HttpCheck(
            f"{url}/health",
            json_equals={"$.status": "ok", "$.version": "3.1.0"},
            header_equals={"X-App-Version": "3.1.0"},
            body_regex=r'"status":\s*"ok"',
        )
        rep = run_check(check, target)  # type: ignore[arg-type]
    assert rep.ok, rep.render()
    assert len(rep.attempts) == 1


def test_bash_dev_tcp_fallback_reads_the_real_app() -> None:
    with run_app({"APP_VERSION": "3.1.0"}) as (_, url):
        check = HttpCheck(f"{url}/health", json_equals={"$.version": "3.1.0"})
        cmd, stdin = host_http_command(check, 5.0, prefer="bash")
        res = LOCAL.run(cmd, stdin=stdin, timeout=10)
        resp = parse_host_http(res, 5.0)
        assert check.evaluate(resp).ok, (res, resp)  # type: ignore[arg-type]
        wrong = HttpCheck(f"{url}/version", body_contains="9.9")
        cmd, stdin = host_http_command(wrong, 5.0, prefer="bash")
        out = wrong.evaluate(parse_host_http(LOCAL.run(cmd, stdin=stdin), 5.0))  # type: ignore[arg-type]
        assert "3.1.0" in out.observed and not out.ok


def test_bash_fallback_reports_refused() -> None:
    check = HttpCheck(f"http://127.0.0.1:{free_port()}/")
    cmd, stdin = host_http_command(check, 5.0, prefer="bash")
    failure = parse_host_http(LOCAL.run(cmd, stdin=stdin), 5.0)
    assert getattr(failure, "kind", None) is FailureKind.CONNECT


@pytest.mark.parametrize("target", [CONTROL, LOCAL], ids=["control", "host"])
def test_wrong_version_shows_body_and_expected(target: object) -> None:
    with run_app({"APP_VERSION": "3.1.0"}) as (_, url):
        rep = run_check(HttpCheck(f"{url}/health", json_equals={"$.version": "3.2.0"}), target)  # type: ignore[arg-type]
    assert not rep.ok
    assert "$.version: expected '3.2.0', got '3.1.0'" in rep.reason
    assert '"version": "3.1.0"' in rep.attempts[-1].outcome.observed


@pytest.mark.parametrize("target", [CONTROL, LOCAL], ids=["control", "host"])
def test_latency_budget_reports_measured_time(target: object) -> None:
    with run_app({"APP_FAIL_MODE": "slow", "APP_SLOW_MS": "300"}) as (_, url):
        rep = run_check(HttpCheck(f"{url}/health", latency_budget=0.1), target)  # type: ignore[arg-type]
    (failure,) = rep.attempts[-1].outcome.failures
    assert failure.kind is FailureKind.LATENCY
    measured = rep.attempts[-1].outcome.elapsed
    assert measured is not None and measured >= 0.3  # the app sleeps 300 ms
    assert f"took {measured:.3f}s, over the 0.100s budget" in failure.message


def test_refused_then_gives_up_with_every_attempt() -> None:
    rep = run_check(
        HttpCheck(f"http://127.0.0.1:{free_port()}/"),
        retry=Retry(attempts=3, backoff=0.01, jitter=0),
    )
    assert [a.outcome.kinds for a in rep.attempts] == [{FailureKind.CONNECT}] * 3
    assert rep.reason.endswith("(gave up after 3 attempts)")


@pytest.mark.parametrize("target", [CONTROL, LOCAL], ids=["control", "host"])
def test_tls_verification(tls_server: tuple[str, Path], target: object) -> None:
    url, cert = tls_server
    strict = run_check(HttpCheck(url), target)  # type: ignore[arg-type]
    assert strict.attempts[-1].outcome.kinds == {FailureKind.TLS}, strict.render()
    assert "CERTIFICATE_VERIFY_FAILED" in strict.reason
    assert run_check(HttpCheck(url, verify_tls=False), target).ok  # type: ignore[arg-type]
    with_ca = run_check(HttpCheck(url, ca_bundle=str(cert), json_equals={"$.tls": True}), target)  # type: ignore[arg-type]
    assert with_ca.ok, with_ca.render()
    missing_ca = run_check(HttpCheck(url, ca_bundle="/nonexistent/ca.pem"), target)  # type: ignore[arg-type]
    assert missing_ca.attempts[-1].outcome.kinds == {FailureKind.TLS}


@pytest.mark.parametrize("target", [CONTROL, LOCAL], ids=["control", "host"])
def test_tcp_open_and_closed(target: object) -> None:
    with run_app() as (_, url):
        port = int(url.rsplit(":", 1)[1])
        assert run_check(TcpCheck("127.0.0.1", port), target).ok  # type: ignore[arg-type]
    closed = run_check(TcpCheck("127.0.0.1", port), target)  # type: ignore[arg-type]
    assert closed.attempts[-1].outcome.kinds == {FailureKind.CONNECT}
    assert run_check(TcpCheck("127.0.0.1", port, open=False), target).ok  # type: ignore[arg-type]


def test_process_check_sees_a_real_process_and_not_itself() -> None:
    marker = f"cdlib-proc-{uuid.uuid4().hex[:8]}"
    # The probe's own shell must not count: the pattern is absent while nothing runs.
    assert not run_check(ProcessCheck(marker)).ok
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        rep = run_check(ProcessCheck(marker), LOCAL)
        assert rep.ok, rep.render()
        assert str(proc.pid) in rep.attempts[-1].outcome.observed
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert run_check(ProcessCheck(marker, running=False)).ok


def test_file_and_command_checks(tmp_path: Path) -> None:
    f = tmp_path / "app.conf"
    f.write_text("port=8080\nuser=app\n")
    assert run_check(FileCheck(str(f), kind="file", contains="port=8080", regex=r"^user=app$")).ok
    bad = run_check(FileCheck(str(f), contains="port=9090"))
    assert "does not contain 'port=9090'" in bad.reason and "port=8080" in bad.render()
    assert not run_check(FileCheck(str(tmp_path / "nope"))).ok
    assert run_check(FileCheck(str(tmp_path), kind="directory")).ok
    assert run_check(CommandCheck(f"cat {f}", stdout_contains="user=app")).ok
    failing = run_check(CommandCheck("echo out; echo err >&2; exit 3", exit_code=0))
    assert "exit code 3, expected 0" in failing.reason and "stderr: err" in failing.render()


def test_smoke_task_in_a_playbook_reports_in_events_and_recap(tmp_path: Path) -> None:
    with run_app({"APP_VERSION": "3.1.0"}) as (_, url):
        pb = tmp_path / "pb.py"
        pb.write_text(
            "from cdlib import Play, tasks\n"
            "from cdlib.checks import HttpCheck\n"
            "play = Play('smoke', hosts='all', vars={'want': '3.2.0'})\n"
            f"play.task(tasks.smoke(check=HttpCheck('{url}/health', name='health',\n"
            "    json_equals={'$.version': '{{ want }}'})))\n"
        )
        events: list[dict[str, object]] = []
        result = cdlib.run(pb, sinks=[cdlib.CallbackSink(events.append)])
    assert result.stats["localhost"].failed == 1
    (task_ev,) = [e for e in events if e["event"] == "task_result"]
    assert task_ev["status"] == "failed" and task_ev["task"] == "smoke health"
    assert "$.version: expected '3.2.0', got '3.1.0'" in str(task_ev["msg"])
    recap = events[-1]
    assert recap["event"] == "recap"
    assert json.loads(json.dumps(recap))["hosts"]["localhost"]["failed"] == 1


def test_proc_fallback_lists_processes_without_ps() -> None:
    from cdlib.checks import probes

    script = "\n".join(
        ln for ln in probes._PROCESS_SCRIPT.splitlines() if "command -v ps" not in ln
    )
    res = LOCAL.run(script)
    pids = {int(ln.split(" ", 1)[0]) for ln in res.stdout.splitlines() if ln.strip()}
    import os

    assert os.getpid() in pids


def test_smoke_task_does_not_run_in_check_mode_unless_asked(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the check would fail if it ran
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "from cdlib.checks import TcpCheck\n"
        "play = Play('smoke', hosts='all')\n"
        f"play.task(tasks.smoke(check=TcpCheck('127.0.0.1', {port})))\n"
        f"play.task(tasks.smoke(check=TcpCheck('127.0.0.1', {port}), in_check_mode=True))\n"
    )
    result = cdlib.run(pb, check=True)
    first, second = result.results
    assert first.status is cdlib.Status.SKIPPED and "not run in check mode" in first.msg
    assert second.status is cdlib.Status.FAILED and "expected open" in second.msg


def test_smoke_task_option_errors_name_the_playbook_line(tmp_path: Path) -> None:
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('smoke', hosts='all')\n"
        "play.task(tasks.smoke())\n"
    )
    with pytest.raises(cdlib.PlaybookError, match=r"pb\.py:3: .*exactly one of the options"):
        cdlib.run(pb)


@pytest.mark.parametrize("target", [CONTROL, LOCAL], ids=["control", "host"])
def test_credentials_reach_the_server_but_not_the_report(
    tls_server: tuple[str, Path], target: object
) -> None:
    url, cert = tls_server
    token = "Bearer s3cr3t-" + uuid.uuid4().hex
    check = HttpCheck(
        url, ca_bundle=str(cert), headers={"Authorization": token}, body_contains="never"
    )
    rep = run_check(check, target)  # type: ignore[arg-type]
    assert not rep.ok
    text = rep.render() + json.dumps(rep.to_dict())
    assert '"you_sent": "***"' in rep.attempts[-1].outcome.observed  # it was sent, and echoed
    assert "s3cr3t" not in text
