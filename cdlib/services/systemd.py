"""systemd backend: unit file, ``daemon-reload`` only when it changed, enable, start/stop.

Needs systemd as PID 1 on the host; without it (containers, the test fleet) the task
fails with a clear error and ``supervisord`` is the backend to use.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdlib.connections.shell import atomic_write_command, q
from cdlib.facts.services import UnitState


@dataclass(frozen=True)
class SystemdWant:
    """The desired state of a unit (from the task's options)."""

    unit: str  # e.g. "app.service"
    state: str | None  # started | stopped | restarted | reloaded | None
    enabled: bool | None
    unit_path: str | None  # where the unit file goes, when the task manages it
    unit_changed: bool  # its content differs from what is on the host


def unit_name(name: str) -> str:
    """``app`` -> ``app.service``; names with a unit suffix stay as they are."""
    suffixes = (".service", ".socket", ".timer", ".target", ".path", ".mount")
    return name if name.endswith(suffixes) else f"{name}.service"


def decide(want: SystemdWant, st: UnitState) -> list[str]:
    """Steps, in order, from ``write-unit``, ``daemon-reload``, ``enable``, ``disable``,
    ``start``, ``stop``, ``restart``, ``reload``."""
    steps: list[str] = []
    if want.unit_changed:
        steps += ["write-unit", "daemon-reload"]
    elif st.need_daemon_reload:
        steps.append("daemon-reload")
    if want.enabled is True and (want.unit_changed or not st.enabled):
        steps.append("enable")
    if want.enabled is False and st.enabled:
        steps.append("disable")
    active = st.active and st.load_state != "not-found"
    if want.state == "started" and not active:
        steps.append("start")
    elif want.state == "stopped" and active:
        steps.append("stop")
    elif want.state == "restarted":
        steps.append("restart")
    elif want.state == "reloaded":
        steps.append("reload" if active else "start")
    return steps


def script(want: SystemdWant, steps: list[str]) -> str:
    """One sh script doing ``steps`` (unit content on stdin for ``write-unit``)."""
    u = q(want.unit)
    cmds = []
    for s in steps:
        if s == "write-unit":
            assert want.unit_path is not None
            cmds.append(atomic_write_command(want.unit_path, "0644", None, None))
        elif s == "daemon-reload":
            cmds.append("systemctl daemon-reload")
        else:
            cmds.append(f"systemctl {s} {u}")
    return " && ".join(cmds)


def verify_command(path: str) -> str:
    """``systemd-analyze verify`` of a unit file (works without systemd as PID 1)."""
    return f"systemd-analyze verify {q(path)}"
