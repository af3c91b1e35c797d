"""Service manager facts: ``systemctl show`` and ``supervisorctl status``, with pure parsers."""

from __future__ import annotations

import re
import shlex
from collections.abc import Hashable
from dataclasses import dataclass, field

from cdlib.facts.base import Fact

#: Properties read from ``systemctl show``.
SYSTEMD_PROPS = ("LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload")
_NO_SYSTEMD = ("not been booted with systemd", "Failed to connect to bus", "command not found")


@dataclass(frozen=True)
class UnitState:
    """A systemd unit as ``systemctl show`` reports it.

    ``available`` is false when systemd is not the init system (or not installed);
    ``error`` then says why.
    """

    available: bool
    load_state: str = ""
    active_state: str = ""
    sub_state: str = ""
    unit_file_state: str = ""
    need_daemon_reload: bool = False
    error: str = ""

    @property
    def active(self) -> bool:
        """Running (or reloading / activating)."""
        return self.active_state in ("active", "reloading", "activating")

    @property
    def enabled(self) -> bool:
        """Enabled at boot."""
        return self.unit_file_state in ("enabled", "enabled-runtime", "static", "alias")


def parse_systemctl_show(output: str, exit_code: int = 0) -> UnitState:
    """Parse ``systemctl show -p A,B,...`` output (``Key=value`` lines)."""
    if any(m in output for m in _NO_SYSTEMD) or (exit_code != 0 and "=" not in output):
        return UnitState(False, error=output.strip().splitlines()[0] if output.strip() else "")
    props: dict[str, str] = {}
    for line in output.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            props[k.strip()] = v.strip()
    return UnitState(
        available=True,
        load_state=props.get("LoadState", ""),
        active_state=props.get("ActiveState", ""),
        sub_state=props.get("SubState", ""),
        unit_file_state=props.get("UnitFileState", ""),
        need_daemon_reload=props.get("NeedDaemonReload", "no") == "yes",
    )


class UnitFact(Fact[UnitState]):
    """``systemctl show`` of one unit."""

    def __init__(self, unit: str) -> None:
        self.unit = unit

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("systemd-unit", self.unit)

    def command(self) -> str:
        """Snippet (stderr kept: it says when systemd is not running)."""
        props = ",".join(SYSTEMD_PROPS)
        return f"systemctl show {shlex.quote(self.unit)} --property={props} 2>&1"

    def parse(self, output: str, exit_code: int) -> UnitState:
        """See :func:`parse_systemctl_show`."""
        return parse_systemctl_show(output, exit_code)


@dataclass(frozen=True)
class ProgramState:
    """One supervisord program: ``RUNNING``, ``STOPPED``, ``FATAL``... with its pid."""

    name: str
    state: str
    pid: int | None = None
    description: str = ""

    @property
    def running(self) -> bool:
        """Up (or coming up)."""
        return self.state in ("RUNNING", "STARTING")


@dataclass(frozen=True)
class SupervisorStatus:
    """What ``supervisorctl status`` said: is the daemon up, and its programs."""

    configured: bool  # the supervisord config file exists
    daemon_running: bool
    programs: dict[str, ProgramState] = field(default_factory=dict)
    error: str = ""


_STATUS_RE = re.compile(r"^(\S+)\s+([A-Z]+)\s*(.*)$")
_PID_RE = re.compile(r"pid (\d+)")
_DOWN = ("no such file", "refused connection", "connection refused", "SHUTDOWN_STATE")


def parse_supervisorctl_status(output: str, exit_code: int = 0) -> SupervisorStatus:
    """Parse ``supervisorctl status`` output; the first line ``noconf`` means no config file."""
    text = output.strip()
    if text.startswith("noconf"):
        return SupervisorStatus(configured=False, daemon_running=False)
    lower = text.lower()
    if any(m.lower() in lower for m in _DOWN) and not _STATUS_RE.match(text.split("\n")[0] or ""):
        return SupervisorStatus(True, False, error=text.splitlines()[0] if text else "")
    programs: dict[str, ProgramState] = {}
    for line in text.splitlines():
        if line.startswith("unix://") or line.startswith("http://"):
            return SupervisorStatus(True, False, error=line)
        if ": ERROR" in line:  # "name: ERROR (no such process)"
            continue
        m = _STATUS_RE.match(line.strip())
        if not m:
            continue
        pid = _PID_RE.search(m.group(3))
        programs[m.group(1)] = ProgramState(
            m.group(1), m.group(2), int(pid.group(1)) if pid else None, m.group(3).strip()
        )
    return SupervisorStatus(True, True, programs)


class SupervisorFact(Fact[SupervisorStatus]):
    """``supervisorctl status`` against the supervisord of config file ``conf``."""

    def __init__(self, conf: str) -> None:
        self.conf = conf

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("supervisor", self.conf)

    def command(self) -> str:
        """Snippet; prints ``noconf`` when the config file is missing."""
        c = shlex.quote(self.conf)
        return f"if [ ! -f {c} ]; then echo noconf; exit 0; fi; supervisorctl -c {c} status 2>&1"

    def parse(self, output: str, exit_code: int) -> SupervisorStatus:
        """See :func:`parse_supervisorctl_status`."""
        return parse_supervisorctl_status(output, exit_code)
