"""The host deploy lock (cdlib.release_install.lock) on this machine, via the local transport."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cdlib.connections.base import CommandResult
from cdlib.connections.local import LocalConnection
from cdlib.release_install.lock import deploy_lock, is_stale, parse_owner


class Watching(LocalConnection):
    """Runs commands locally; records whether the owner in a lock command looked stale."""

    def __init__(self) -> None:
        super().__init__("local")
        self.seen: list[bool] = []

    def run(self, command: str, **kw: Any) -> CommandResult:
        m = re.search(r"o='(\{[^']*\})'", command)
        if m:
            owner = parse_owner(m.group(1))
            assert owner is not None
            # What another run in this process would conclude if it found this lock now.
            self.seen.append(is_stale(owner))
        return super().run(command, **kw)


def test_a_lock_being_taken_is_never_stale_to_this_process(tmp_path: Path) -> None:
    conn = Watching()
    ctx = SimpleNamespace(conn=conn, host="local")
    lock = str(tmp_path / ".cdlib" / "deploy.lock")
    with deploy_lock(ctx, "demo", lock, timeout=5) as held:  # type: ignore[arg-type]
        owner = parse_owner(Path(lock).read_text())
        assert owner is not None and owner.token == held.owner.token
        assert not is_stale(owner)
    assert conn.seen and not any(conn.seen)
    assert not Path(lock).exists()
    # Once the run has ended, a lock it left behind is stale (its host died mid-install).
    assert is_stale(owner)
