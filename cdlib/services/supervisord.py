"""supervisord backend, for hosts and containers without systemd.

The task runs its own supervisord: main config ``conf`` (default
``/etc/cdlib-host/supervisord.conf``), programs in ``<dir of conf>/supervisor.d/<name>.conf``,
socket, pid file and logs under ``run_dir`` (default ``/var/lib/cdlib/supervisor``). It is
started by the task when it is not running.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cdlib.connections.shell import atomic_write_command, q
from cdlib.facts.services import SupervisorStatus
from cdlib.services import supervisor_ini as ini

#: How long the script waits for a freshly started supervisord to answer.
START_WAIT = 15


@dataclass(frozen=True)
class Program:
    """A ``[program:x]`` section."""

    name: str
    command: str
    directory: str | None = None
    user: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    autostart: bool = True
    start_secs: int = 1
    stop_signal: str = "TERM"
    stop_wait_secs: int = 10


def program_path(conf: str, name: str) -> str:
    """Where the program's section file lives."""
    return posixpath.join(posixpath.dirname(conf), "supervisor.d", f"{name}.conf")


#: Program files hold the environment, which may hold secrets: readable by root only.
PROGRAM_MODE = "0600"
MAIN_MODE = "0644"


def program_config(p: Program, run_dir: str) -> str:
    """The program section, with its output logged under ``run_dir/log``.

    Raises :class:`~cdlib.services.supervisor_ini.IniValueError` naming the option
    when a value cannot be written (a newline, an inline comment, ...).
    """
    name = ini.name("option 'name'", p.name)
    items = [("command", ini.value("option 'command'", p.command))]
    if p.directory:
        items.append(("directory", ini.value("option 'directory'", p.directory)))
    if p.user:
        items.append(("user", ini.value("option 'user'", p.user)))
    if p.environment:
        items.append(("environment", ini.environment("option 'environment'", p.environment)))
    if not re.fullmatch(r"[A-Z0-9]{1,16}", p.stop_signal):
        raise ini.IniValueError("option 'stop_signal'", "is not a signal name such as TERM")
    items += [
        ("autostart", "true" if p.autostart else "false"),
        ("autorestart", "unexpected"),
        ("startsecs", str(int(p.start_secs))),
        ("stopsignal", p.stop_signal),
        ("stopwaitsecs", str(int(p.stop_wait_secs))),
        ("stopasgroup", "true"),
        ("killasgroup", "true"),
        ("redirect_stderr", "true"),
        ("stdout_logfile", f"{check_path('supervisor_run', run_dir)}/log/{name}.log"),
        ("stdout_logfile_maxbytes", "10MB"),
        ("stdout_logfile_backups", "2"),
    ]
    return ini.render([(f"program:{name}", items)], "managed by cdlib")


def check_path(option: str, path: str) -> str:
    """A path used inside supervisord's configs: one plain word (no ``%``, no spaces)."""
    field = f"option {option!r}"
    ini.value(field, path)
    if "%" in path or any(c.isspace() for c in path):
        raise ini.IniValueError(field, "holds '%' or whitespace")
    return path


def main_config(conf: str, run_dir: str) -> str:
    """supervisord's own config: private socket, pid file, logs, and the program include."""
    check_path("supervisor_conf", conf)
    check_path("supervisor_run", run_dir)
    sock = f"{run_dir}/supervisor.sock"
    return "\n".join(
        [
            "; managed by cdlib: a supervisord of its own, separate from the system's",
            "[unix_http_server]",
            f"file={sock}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"pidfile={run_dir}/supervisord.pid",
            f"logfile={run_dir}/supervisord.log",
            f"childlogdir={run_dir}/log",
            "logfile_maxbytes=10MB",
            "directory=/",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{sock}",
            "",
            "[include]",
            f"files = {posixpath.join(posixpath.dirname(conf), 'supervisor.d')}/*.conf",
            "",
        ]
    )


@dataclass(frozen=True)
class SupervisorWant:
    """Desired state of one program under a private supervisord."""

    name: str
    state: str | None
    conf: str
    run_dir: str
    main_changed: bool  # supervisord.conf missing or different
    program_changed: bool  # program file missing or different (only when it is managed)
    program_managed: bool
    #: The program's ``startsecs``: a start counts only once the program has been RUNNING
    #: (up that long, for supervisord) and still is, same pid, that long after.
    start_secs: int = 1


def decide(want: SupervisorWant, st: SupervisorStatus) -> list[str]:
    """Steps from ``write-main``, ``start-daemon``, ``write-program``, ``update``, ``start``,
    ``stop``, ``restart``, ``reload`` (``update`` adds or restarts a changed program)."""
    steps: list[str] = []
    if want.main_changed:
        steps.append("write-main")
    if not st.daemon_running:
        steps.append("start-daemon")
    prog = st.programs.get(want.name)
    if want.program_changed:
        steps += ["write-program", "update"]
    elif want.program_managed and prog is None and st.daemon_running:
        # The file is right but the daemon never loaded it (an earlier run failed midway).
        steps.append("update")
    # After "update" a managed program is (re)started by supervisord when autostart is on;
    # the start step checks again on the host, so predicting "start" here is exact.
    # Only RUNNING is started: STARTING may end in BACKOFF, and BACKOFF is a crash loop.
    running = prog is not None and prog.state == "RUNNING" and not want.program_changed
    alive = prog is not None and prog.state in ("RUNNING", "STARTING", "BACKOFF")
    if want.state == "started" and not running:
        steps.append("start")
    elif want.state == "stopped" and (alive or want.program_changed):
        steps.append("stop")
    elif want.state == "restarted":
        steps.append("restart")
    elif want.state == "reloaded":
        steps.append("reload" if running else "start")
    return steps


def script(
    want: SupervisorWant, steps: list[str], main: str, program: str | None
) -> tuple[str, bytes]:
    """One sh script doing ``steps``, and its stdin.

    Config contents travel as data on stdin (main file first, then the program file),
    never in the script: the script shows in the host's process list, and no value in
    a config can end up run as a command.
    """
    data = b""
    ctl = f"supervisorctl -c {q(want.conf)}"
    name = q(want.name)
    out = ["set -eu", f"mkdir -p -- {q(want.run_dir)}/log {q(posixpath.dirname(want.conf))}"]
    out.append(f"mkdir -p -- {q(posixpath.dirname(program_path(want.conf, want.name)))}")
    for s in steps:
        if s == "write-main":
            body = main.encode()
            out.append(atomic_write_command(want.conf, MAIN_MODE, None, None, size=len(body)))
            data += body
        elif s == "write-program":
            assert program is not None
            body = program.encode()
            path = program_path(want.conf, want.name)
            out.append(atomic_write_command(path, PROGRAM_MODE, None, None, size=len(body)))
            data += body
        elif s == "start-daemon":
            # Detached from our session's stdio so the remote command returns at once.
            out.append(f"supervisord -c {q(want.conf)} </dev/null >/dev/null 2>&1")
            # Cheap socket test first: each supervisorctl is a Python start-up.
            sock = q(want.run_dir + "/supervisor.sock")
            out.append(
                f"n=0; until [ -S {sock} ] && {ctl} pid </dev/null >/dev/null 2>&1; do n=$((n+1)); "
                f'[ $n -le {START_WAIT * 10} ] || {{ echo "supervisord did not start" >&2; '
                f"tail -n 20 {q(want.run_dir + '/supervisord.log')} >&2; exit 1; }}; "
                "sleep 0.1; done"
            )
        elif s == "update":
            # update re-reads the config itself, then adds / restarts what changed.
            out.append(f"{ctl} update {name}")
        elif s == "start":
            out.append(_ctl_checked(ctl, f"start {name}", want.name, want.start_secs))
        elif s == "stop":
            out.append(f"{ctl} stop {name}")
        elif s == "restart":
            out.append(_ctl_checked(ctl, f"restart {name}", want.name, want.start_secs))
        elif s == "reload":
            out.append(f"{ctl} signal HUP {name}")
    return "\n".join(out), data


def _ctl_checked(ctl: str, action: str, name: str, start_secs: int) -> str:
    """Run a start/restart; fail with the program's log tail unless the program reaches
    RUNNING and is still RUNNING, same pid, ``start_secs`` later.

    supervisorctl's own answer is not enough: ``start`` of a program in BACKOFF (crash
    looping) answers "already started", and a program can die right after supervisord
    called it RUNNING. So the script reads ``status`` until the program is RUNNING (a
    STARTING one is waited for; anything else fails at once), then once more after
    ``start_secs``.
    """
    secs = max(int(start_secs), 0)
    tries = (secs + 10) * 5  # polls of 0.2 s while STARTING
    status = f"{ctl} status {q(name)} 2>&1 </dev/null | awk 'NR==1{{print $2, $4}}'"
    what = q(f"program {name!r} did not stay RUNNING for {secs}s (startsecs)")
    fail = (
        f'{{ s=${{s:-none}}; printf "%s: %s\\n" {what} "${{s%% *}}" >&2; '
        f'[ -z "$o" ] || printf "%s\\n" "$o" >&2; '
        f"{ctl} tail {q(name)} stdout 2>/dev/null | tail -n 20 >&2; exit 1; }}"
    )
    return "\n".join(
        [
            f"o=$({ctl} {action} 2>&1 </dev/null) || true",
            f'n=0; while :; do s=$({status}); case "$s" in RUNNING*) break;; STARTING*) ;; '
            f"*) {fail};; esac; n=$((n+1)); [ $n -le {tries} ] || {fail}; sleep 0.2; done",
            f'p=$s; sleep {secs}; s=$({status}); [ "$s" = "$p" ] || {fail}',
        ]
    )
