"""Pure evaluation of TCP, command, process, service and file observations."""

from __future__ import annotations

import pytest

from cdlib.checks import CommandCheck, FailureKind, FileCheck, ProcessCheck, ServiceCheck, TcpCheck
from cdlib.checks.system import FileState, ProcessList, ServiceState, TcpResult
from cdlib.connections.base import CommandResult


def test_tcp_open_closed_and_timeout() -> None:
    c = TcpCheck("10.0.0.1", 80)
    assert c.evaluate(TcpResult(True)).ok
    refused = c.evaluate(TcpResult(False, "Connection refused"))
    assert refused.kinds == {FailureKind.CONNECT} and "refused" in refused.reason
    assert c.evaluate(TcpResult(False, "slow", timed_out=True)).kinds == {FailureKind.TIMEOUT}
    closed = TcpCheck("10.0.0.1", 80, open=False)
    assert closed.evaluate(TcpResult(False, "refused")).ok
    assert "expected closed" in closed.evaluate(TcpResult(True)).reason


def test_tcp_port_validation_and_strings() -> None:
    assert TcpCheck("h", "8080").port == 8080
    assert TcpCheck("h", "{{ app_port }}").port == "{{ app_port }}"
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        TcpCheck("h", 0)
    with pytest.raises(ValueError, match="number"):
        TcpCheck("h", "http")


def test_command_exit_and_output() -> None:
    c = CommandCheck("app --version", stdout_contains="1.2", stdout_regex=r"^app ")
    assert c.evaluate(CommandResult("x", 0, "app 1.2.3\n", "")).ok
    out = c.evaluate(CommandResult("x", 2, "other 9\n", "boom"))
    assert out.kinds == {FailureKind.EXIT_CODE, FailureKind.OUTPUT}
    assert "exit code 2, expected 0" in out.reason
    assert "stderr: boom" in out.observed
    assert CommandCheck("grep -q x f", exit_code=(0, 1)).evaluate(CommandResult("", 1, "", "")).ok
    err = CommandCheck("x", stderr_contains="warn").evaluate(CommandResult("", 0, "", "ok"))
    assert "stderr does not contain 'warn'" in err.reason


def test_process_count_and_absence() -> None:
    procs = ProcessList(((10, "python3 app.py --port 80"), (11, "python3 app.py --port 81")))
    assert ProcessCheck(r"app\.py", min_count=2).evaluate(procs).ok
    out = ProcessCheck(r"app\.py", min_count=3).evaluate(procs)
    assert out.kinds == {FailureKind.NOT_RUNNING} and "2 process(es)" in out.reason
    assert not ProcessCheck("nginx").evaluate(procs).ok
    gone = ProcessCheck(r"app\.py", running=False).evaluate(procs)
    assert "expected none" in gone.reason and "10 python3 app.py" in gone.observed


def test_service_state() -> None:
    assert ServiceCheck("nginx").evaluate(ServiceState("active", "systemd")).ok
    out = ServiceCheck("nginx").evaluate(ServiceState("failed", "systemd"))
    assert "nginx is failed (systemd), expected active" in out.reason
    assert ServiceCheck("nginx", running=False).evaluate(ServiceState("inactive", "service")).ok
    with pytest.raises(ValueError, match="characters"):
        ServiceCheck("nginx; rm -rf /")


def test_file_existence_kind_and_content() -> None:
    assert FileCheck("/etc/app.conf").evaluate(FileState("file")).ok
    missing = FileCheck("/etc/app.conf").evaluate(FileState("missing"))
    assert missing.kinds == {FailureKind.MISSING} and "does not exist" in missing.reason
    assert FileCheck("/x", exists=False).evaluate(FileState("missing")).ok
    assert "expected absent" in FileCheck("/x", exists=False).evaluate(FileState("file")).reason
    assert (
        "is a directory, expected file"
        in FileCheck("/x", kind="file").evaluate(FileState("directory")).reason
    )
    c = FileCheck("/x", contains=("port=80",), regex=r"^user=\w+$")
    assert c.evaluate(FileState("file", "port=80\nuser=app\n")).ok
    out = c.evaluate(FileState("file", "port=81\n", truncated=True))
    assert out.kinds == {FailureKind.CONTENT}
    assert "(first 1048576 bytes) does not contain 'port=80'" in out.reason


def test_file_path_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        FileCheck("etc/x")
    assert FileCheck("{{ app_dir }}/x").path.startswith("{{")


def test_default_where() -> None:
    assert TcpCheck("h", 1).where == "control"
    assert CommandCheck("true").where == "host"
    assert FileCheck("/x").where == "host"
    assert ProcessCheck("x").where == "host"
