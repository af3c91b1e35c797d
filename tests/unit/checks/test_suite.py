"""Suites: per-host templates rendered up front, parallel runs, reports per host."""

from __future__ import annotations

import threading

import pytest

from cdlib.checks import CommandCheck, HttpCheck, TcpCheck
from cdlib.checks.suite import Suite, SuiteError, SuiteHost, prepare, render_check, run_suite
from cdlib.connections.base import CommandResult, Connection


class CannedConnection(Connection):
    """A test double answering every command with canned stdout, recording what ran."""

    transport = "canned"

    def __init__(self, host: str, stdout: str, barrier: threading.Barrier | None = None) -> None:
        super().__init__(host)
        self.stdout = stdout
        self.commands: list[str] = []
        self.barrier = barrier

    def _connect(self) -> None:
        pass

    def _run(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult:
        self.commands.append(display)
        if self.barrier is not None:
            self.barrier.wait(timeout=10)  # all hosts must be in here at once
        return CommandResult(display, 0, self.stdout, "")

    def _put(self, data: bytes, remote_path: str) -> None:
        raise NotImplementedError

    def _get(self, remote_path: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_render_check_uses_host_vars_and_revalidates() -> None:
    c = HttpCheck(
        "http://{{ address }}:{{ port }}/x", headers={"X-Host": "{{ inventory_hostname }}"}
    )
    h = SuiteHost("web1", None, {"ansible_host": "10.1.1.1", "port": 8080})
    r = render_check(c, h.template_vars())
    assert r.url == "http://10.1.1.1:8080/x" and r.headers == {"X-Host": "web1"}
    bad = HttpCheck("{{ scheme }}://x/")
    with pytest.raises(ValueError, match="http"):
        render_check(bad, {"scheme": "ftp"})
    assert render_check(TcpCheck("h", "{{ p }}"), {"p": 81}).port == 81


def test_prepare_reports_every_host_and_check_that_fails_to_render() -> None:
    s = Suite("s", (TcpCheck("{{ address }}", "{{ app_port }}"),), source="smoke.yml")
    with pytest.raises(SuiteError) as info:
        prepare(s, [SuiteHost("a", None, {"app_port": 1}), SuiteHost("b"), SuiteHost("c")])
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "smoke.yml: suite s, checks[0] (tcp {{ address }}:{{ app_port }}), b:"
    )
    assert "'app_port' is undefined" in lines[0]


def test_suite_runs_hosts_in_parallel_and_checks_in_order() -> None:
    barrier = threading.Barrier(3)
    conns = [CannedConnection(f"h{i}", "version 2\n", barrier) for i in range(3)]
    s = Suite(
        "cmds",
        (
            CommandCheck("app --version", stdout_contains="version 2", name="version"),
            CommandCheck("app --ready", stdout_contains="ready", name="ready"),
        ),
    )
    hosts = [SuiteHost(c.host, c) for c in conns]
    # With a 3-party barrier in every command, this only finishes if hosts run at once.
    rep = run_suite(s, hosts, forks=3)
    assert list(rep.hosts) == ["h0", "h1", "h2"]
    assert all(c.commands == ["app --version", "app --ready"] for c in conns)
    assert not rep.ok and rep.failed_hosts == ["h0", "h1", "h2"]
    first, second = rep.hosts["h0"]
    assert first.ok and not second.ok and second.target == "h0"
    d = rep.to_dict()
    assert d["hosts"]["h1"][1]["reason"] == "stdout does not contain 'ready'"
    assert "h2: 1/2 checks passed" in rep.render()


def test_bad_templates_stop_the_suite_before_any_check_runs() -> None:
    conn = CannedConnection("h1", "")
    s = Suite("s", (CommandCheck("true"), CommandCheck("echo {{ nope }}")))
    with pytest.raises(SuiteError, match="'nope' is undefined"):
        run_suite(s, [SuiteHost("h1", conn)])
    assert conn.commands == []


def test_suite_argument_errors() -> None:
    s = Suite("s", (CommandCheck("true"),))
    with pytest.raises(SuiteError, match="forks"):
        run_suite(s, [], forks=0)
    with pytest.raises(SuiteError, match="duplicate host"):
        run_suite(s, [SuiteHost("a"), SuiteHost("a")])
    with pytest.raises(SuiteError, match="name"):
        Suite("", ())
    assert run_suite(s, []).ok


def test_secret_vars_render_to_their_value() -> None:
    from cdlib.engine.secrets import Secret

    c = HttpCheck("http://h/", headers={"X-Token": "{{ token }}"})
    assert render_check(c, {"token": Secret("t0ps3cret")}).headers == {"X-Token": "t0ps3cret"}
