"""The host deploy lock (cdlib.install.lock) on this machine, via the local transport."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cdlib.connections.base import CommandResult
from cdlib.connections.local import LocalConnection
from cdlib.install.lock import (
    LockOwner,
    Machine,
    deploy_lock,
    is_stale,
    judge_stale,
    new_owner,
    parse_owner,
    this_machine,
)


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


HERE = Machine("ci", boot_id="b1", machine_id="m1", pidns="pid:[1]")


def _owner(**kw: Any) -> LockOwner:
    base: dict[str, Any] = {
        "user": "u",
        "host": "ci",
        "pid": 4242,
        "since": 0.0,
        "token": "t",
        "boot_id": "b1",
        "machine_id": "m1",
        "pidns": "pid:[1]",
    }
    return LockOwner(**{**base, **kw})


def _dead(pid: int) -> bool:
    return False


def _alive(pid: int) -> bool:
    return True


@pytest.mark.parametrize(
    ("holder", "stale"),
    [
        # Same machine, boot and pid namespace, process gone: stale.
        (_owner(), True),
        # Same hostname, another pid namespace (a container, `unshare --pid`): its pid 4242
        # is not ours to check.
        (_owner(pidns="pid:[2]"), False),
        (_owner(pidns=""), False),
        # Another machine with the same hostname (other boot and machine id).
        (_owner(boot_id="b2", machine_id="m2"), False),
        (_owner(boot_id="b2", machine_id=""), False),
        # This machine before a reboot: every run of that boot is gone.
        (_owner(boot_id="b0"), True),
        # A lock file of an older version (no identity): never judged by its pid.
        (_owner(boot_id="", machine_id="", pidns=""), False),
        # Another hostname, no token: never.
        (_owner(host="laptop"), False),
        (_owner(token=""), False),
        (_owner(pid=0), False),
    ],
)
def test_stale_only_when_provably_this_machine_and_gone(holder: LockOwner, stale: bool) -> None:
    assert judge_stale(holder, HERE, 7, set(), _dead) is stale
    # A live pid in our namespace is never stale.
    assert judge_stale(holder, HERE, 7, set(), _alive) is (stale and holder.boot_id != "b1")


def test_this_process_is_stale_only_when_its_run_has_ended() -> None:
    mine = _owner(pid=7)
    assert not judge_stale(mine, HERE, 7, {"t"}, _alive)
    assert judge_stale(mine, HERE, 7, set(), _alive)
    # The same pid number in another pid namespace is another process.
    assert not judge_stale(_owner(pid=7, pidns="pid:[9]"), HERE, 7, set(), _alive)


def test_this_machine_unknown_identity_is_conservative() -> None:
    unknown = Machine("ci")
    assert not judge_stale(_owner(), unknown, 7, set(), _dead)


def test_lock_files_old_and_new_parse() -> None:
    old = parse_owner('{"user":"a","controlhost":"h","pid":5,"since":"s","token":"t"}')
    assert old == LockOwner("a", "h", 5, 0.0, "t")
    new = _owner()
    assert parse_owner(new.to_json()) == new
    assert parse_owner("[1, 2]") == LockOwner("unknown", "unknown", 0, 0.0, "")
    here = this_machine()
    assert here.pidns.startswith("pid:[") and len(here.boot_id) == 32
    raw = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert raw not in new_owner().to_json()  # kept hashed
