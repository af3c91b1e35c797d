"""The audit log of flag changes: who, when, where, which flag, old -> new.

One JSON object per line, appended with a single ``write`` on a file opened with
``O_APPEND``, so concurrent writers interleave whole lines. Only the changed
fields are logged (state, default variant, targeting), never credentials.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdlib.flags.mutate import FlagChange

__all__ = ["AuditEntry", "AuditLog", "current_actor"]


def current_actor() -> str:
    """``user@host`` of whoever runs cdlib (``$CDLIB_ACTOR`` overrides, e.g. in CI)."""
    actor = os.environ.get("CDLIB_ACTOR")
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry, e.g. in a container
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class AuditEntry:
    """One logged change of one flag field."""

    when: str
    who: str
    target: str
    action: str
    flag: str
    field: str
    old: Any
    new: Any


class AuditLog:
    """An append-only JSON Lines file of :class:`AuditEntry` records."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def record(
        self,
        changes: Iterable[FlagChange],
        *,
        target: str,
        action: str,
        who: str | None = None,
        when: datetime | None = None,
    ) -> list[AuditEntry]:
        """Append one entry per change and return them."""
        stamp = (when or datetime.now(UTC)).isoformat(timespec="seconds")
        actor = who or current_actor()
        entries = [
            AuditEntry(stamp, actor, target, action, c.flag, c.field, c.old, c.new) for c in changes
        ]
        if not entries:
            return []
        payload = "".join(json.dumps(asdict(e), sort_keys=True) + "\n" for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, payload.encode("utf-8"))
        finally:
            os.close(fd)
        return entries

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in the log, oldest first (none if the log does not exist)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield AuditEntry(**json.loads(line))
