"""The one rule for service names, shared by every backend and checked at validation.

A name becomes a systemd unit name, a supervisord ``[program:NAME]`` section, a file name
under ``supervisor.d/`` and a word on ``systemctl`` / ``supervisorctl`` command lines. So it
may hold only what all of them can: letters, digits and ``_ . @ -`` (systemd also allows
``:`` and ``\\``, but ``:`` separates group and program in supervisorctl and ``\\`` is
systemd's escape), it does not start with ``-`` (it would read as an option) or ``.``, and
it is at most 255 characters (a file name and systemd's limit).
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]*")
MAX_LENGTH = 255


def service_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a service, or None when it can."""
    if not name:
        return "service name is empty"
    if len(name) > MAX_LENGTH:
        return f"service name is longer than {MAX_LENGTH} characters"
    if not _NAME.fullmatch(name):
        bad = next((c for c in name if not re.fullmatch(r"[A-Za-z0-9_.@-]", c)), None)
        what = f"character {bad!r}" if bad is not None else f"first character {name[0]!r}"
        return (
            f"service name {name!r} has {what}: use letters, digits and _ . @ - "
            "(not starting with - or .), as systemd units and supervisord programs need"
        )
    return None
