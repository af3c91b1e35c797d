"""Service parsers and backend decisions, from canned output."""

from __future__ import annotations

import pytest

from cdlib.engine.errors import PlaybookError
from cdlib.facts.services import (
    ProgramState,
    SupervisorStatus,
    UnitState,
    parse_supervisorctl_status,
    parse_systemctl_show,
)
from cdlib.services import supervisord, systemd
from cdlib.tasks import service

SHOW = """LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
NeedDaemonReload=no
"""


def test_parse_systemctl_show() -> None:
    st = parse_systemctl_show(SHOW)
    assert st.available and st.active and st.enabled and not st.need_daemon_reload
    st = parse_systemctl_show(
        "LoadState=not-found\nActiveState=inactive\nUnitFileState=\nNeedDaemonReload=yes\n"
    )
    assert not st.active and not st.enabled and st.need_daemon_reload
    down = parse_systemctl_show(
        "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
        "Failed to connect to bus: Host is down\n",
        1,
    )
    assert not down.available and "not been booted" in down.error


def test_parse_supervisorctl_status() -> None:
    out = (
        "sampleapp                        RUNNING   pid 1234, uptime 0:00:05\n"
        "other                            STOPPED   Not started\n"
        "crashy                           FATAL     Exited too quickly\n"
        "ghost: ERROR (no such process)\n"
    )
    st = parse_supervisorctl_status(out, 3)
    assert st.configured and st.daemon_running
    assert st.programs["sampleapp"] == ProgramState(
        "sampleapp", "RUNNING", 1234, "pid 1234, uptime 0:00:05"
    )
    assert not st.programs["other"].running and st.programs["crashy"].state == "FATAL"
    assert "ghost" not in st.programs
    down = parse_supervisorctl_status(
        "unix:///var/lib/cdlib/supervisor/supervisor.sock no such file\n", 4
    )
    assert down.configured and not down.daemon_running
    refused = parse_supervisorctl_status("unix:///x.sock refused connection\n", 4)
    assert not refused.daemon_running
    assert parse_supervisorctl_status("noconf\n") == SupervisorStatus(False, False)
    # A running daemon with no programs prints nothing.
    assert parse_supervisorctl_status("", 0) == SupervisorStatus(True, True, {})


def _sysd(
    state: str | None, enabled: bool | None = None, changed: bool = False
) -> systemd.SystemdWant:
    return systemd.SystemdWant(
        "app.service", state, enabled, "/etc/systemd/system/app.service", changed
    )


def test_systemd_daemon_reload_only_when_unit_changed() -> None:
    up = parse_systemctl_show(SHOW)
    assert systemd.decide(_sysd("started", True), up) == []
    assert systemd.decide(_sysd("started", True, changed=True), up) == [
        "write-unit",
        "daemon-reload",
        "enable",
    ]
    idle = UnitState(True, "loaded", "inactive", "dead", "disabled")
    assert systemd.decide(_sysd("started", True), idle) == ["enable", "start"]
    assert systemd.decide(_sysd("stopped", False), up) == ["disable", "stop"]
    assert systemd.decide(_sysd("restarted"), up) == ["restart"]
    assert systemd.decide(_sysd("reloaded"), idle) == ["start"]
    assert systemd.decide(_sysd(None), UnitState(True, need_daemon_reload=True)) == [
        "daemon-reload"
    ]
    script = systemd.script(
        _sysd("started", changed=True), ["write-unit", "daemon-reload", "start"]
    )
    assert "systemctl daemon-reload && systemctl start app.service" in script
    assert systemd.unit_name("x") == "x.service" and systemd.unit_name("y.timer") == "y.timer"


def _sv(state: str | None, main: bool = False, prog: bool = False) -> supervisord.SupervisorWant:
    return supervisord.SupervisorWant("app", state, "/etc/c/s.conf", "/var/r", main, prog, True)


def test_supervisord_decisions() -> None:
    down = SupervisorStatus(True, False)
    running = SupervisorStatus(True, True, {"app": ProgramState("app", "RUNNING", 5)})
    stopped = SupervisorStatus(True, True, {"app": ProgramState("app", "STOPPED")})
    assert supervisord.decide(_sv("started", True, True), down) == [
        "write-main",
        "start-daemon",
        "write-program",
        "update",
        "start",
    ]
    assert supervisord.decide(_sv("started"), running) == []
    assert supervisord.decide(_sv("started"), stopped) == ["start"]
    assert supervisord.decide(_sv("stopped"), running) == ["stop"]
    assert supervisord.decide(_sv("stopped"), stopped) == []
    assert supervisord.decide(_sv("restarted"), running) == ["restart"]
    assert supervisord.decide(_sv("reloaded"), running) == ["reload"]
    assert supervisord.decide(_sv(None, prog=True), running) == ["write-program", "update"]
    # Program file in place but not loaded by the running daemon: load it.
    assert supervisord.decide(_sv("started"), SupervisorStatus(True, True)) == ["update", "start"]


def test_supervisord_crash_loop_is_not_started() -> None:
    # BACKOFF (died before startsecs, being retried) and STARTING are not "started";
    # a crash-looping program is still stopped by state=stopped.
    for state in ("BACKOFF", "STARTING"):
        st = SupervisorStatus(True, True, {"app": ProgramState("app", state)})
        assert supervisord.decide(_sv("started"), st) == ["start"]
        assert supervisord.decide(_sv("stopped"), st) == ["stop"]
    text, _ = supervisord.script(_sv("started"), ["start"], "", None)
    # The start is judged by status read back, twice startsecs apart, not by its answer.
    assert "status app" in text and "sleep 1;" in text and "RUNNING*) break" in text


def test_supervisord_configs() -> None:
    prog = supervisord.Program(
        "app", "/srv/app/current/bin/start", user="app", environment={"A": 'x"%y'}
    )
    text = supervisord.program_config(prog, "/var/r")
    assert "[program:app]" in text and "user=app" in text
    # A value holding '"' goes in single quotes: supervisord's lexer has no escapes.
    assert "environment=A='x\"%%y'" in text
    main = supervisord.main_config("/etc/c/supervisord.conf", "/var/r")
    assert "file=/var/r/supervisor.sock" in main
    assert "files = /etc/c/supervisor.d/*.conf" in main
    assert (
        supervisord.program_path("/etc/c/supervisord.conf", "app") == "/etc/c/supervisor.d/app.conf"
    )


def test_service_options_are_validated() -> None:
    with pytest.raises(PlaybookError, match="backend='supervisord'"):
        service("app", command="x")
    with pytest.raises(PlaybookError, match="for backend='systemd'"):
        service("app", backend="supervisord", unit="app.service.j2")
    with pytest.raises(PlaybookError, match="nothing to do"):
        service("app")
    assert service("app", state="started").label == "service app started"


@pytest.mark.parametrize(
    "name", ["my app", "../etc/x", "a/b", "app:web", "-app", ".hidden", "a\nb", "x" * 256, ""]
)
@pytest.mark.parametrize("backend", ["systemd", "supervisord"])
def test_service_names_systemd_and_supervisord_cannot_hold_are_refused(
    name: str, backend: str
) -> None:
    with pytest.raises(PlaybookError) as err:
        service(name, state="started", backend=backend)  # type: ignore[arg-type]
    assert "service name" in str(err.value) and "task 'service " in str(err.value)


def test_templated_service_name_is_checked_once_rendered() -> None:
    import cdlib
    from cdlib import Host, Inventory, Play

    play = Play("p", hosts="all")
    play.task(service("{{ svc }}", state="started", backend="supervisord", command="x"))
    inv = Inventory([Host("h1", {"ansible_connection": "local", "svc": "app/../../x"})])
    with pytest.raises(PlaybookError) as err:
        cdlib.run(play, inv)
    assert "service name 'app/../../x' has character '/'" in str(err.value)
    assert "task 'service {{ svc }} started'" in str(err.value) and "host h1" in str(err.value)
    for ok in ("app", "app-web_1.2", "app@1", "getty@tty1.service"):
        service(ok, state="started")


def test_secret_in_program_environment_is_written_revealed() -> None:
    from cdlib import Secret

    task = service("app", backend="supervisord", command="x", environment={"PW": Secret("pw1")})
    prog = task._program()
    assert prog is not None and prog.environment == {"PW": "pw1"}
