"""Uploads are never readable by others on the way, and a broken one leaves nothing (issue 19,
item 3), on the SSH fleet: SFTP files are born 0600, an interrupted transfer removes its
partial file, a later upload sweeps what a killed run left, and a short stdin installs nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import paramiko
import pytest

import cdlib
from cdlib import Play, tasks
from cdlib.connections.shell import atomic_write_command
from cdlib.tasks import _upload
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _conn(fleet: Fleet, tmp_path: Path) -> tuple[cdlib.api.Connection, Path]:
    inv_path = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    inv = cdlib.load_inventory([inv_path])
    return cdlib.api.connection_for(inv.hosts[fleet.host(1).name]), inv_path


def test_sftp_upload_is_private_while_written_and_removed_when_interrupted(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.reset()
    conn, _ = _conn(fleet, tmp_path)
    local = fleet.path(1, "/srv/up.bin")
    modes: list[int] = []
    real_write = paramiko.SFTPFile.write

    def spy(self: paramiko.SFTPFile, data: Any) -> None:
        modes.append(local.stat().st_mode & 0o777)  # as others could see it, mid-write
        real_write(self, data)

    monkeypatch.setattr(paramiko.SFTPFile, "write", spy)
    try:
        conn.put(b"s3cr3t" * 1000, "/srv/up.bin")
        assert modes and set(modes) == {0o600}
        assert local.read_bytes() == b"s3cr3t" * 1000
        # A symlink planted at the name is replaced, not written through.
        target = fleet.path(1, "/srv/victim")
        target.write_text("keep")
        local.unlink()
        os.symlink("victim", local)
        conn.put(b"new", "/srv/up.bin")
        assert not local.is_symlink() and local.read_bytes() == b"new"
        assert target.read_text() == "keep"

        def interrupted(self: paramiko.SFTPFile, data: Any) -> None:
            real_write(self, bytes(data)[:100])
            raise KeyboardInterrupt

        monkeypatch.setattr(paramiko.SFTPFile, "write", interrupted)
        with pytest.raises(KeyboardInterrupt):
            conn.put(b"x" * 100_000, "/srv/partial.bin")
        assert not fleet.path(1, "/srv/partial.bin").exists()
    finally:
        conn.close()


def test_large_copy_sweeps_killed_runs_upload_and_installs_with_its_mode(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.reset()
    _, inv = _conn(fleet, tmp_path)
    monkeypatch.setattr(_upload, "STDIN_LIMIT", 1024)  # go over SFTP
    srv = fleet.path(1, "/srv")
    stale = srv / ".big.bin.cdlib-up-0123456789ab"  # a killed run's partial upload
    stale.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    recent = srv / ".big.bin.cdlib-up-ba9876543210"  # another run's, still going
    recent.write_bytes(b"live")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(50_000))
    play = Play("copy", hosts="all")
    play.task(tasks.copy(str(src), "/srv/big.bin", mode="0640"))
    res = cdlib.run(play, inv)
    assert res.ok, [(r.task, r.msg) for r in res.results]
    assert (srv / "big.bin").read_bytes() == src.read_bytes()
    assert (srv / "big.bin").stat().st_mode & 0o777 == 0o640
    assert not stale.exists() and recent.exists()
    assert sorted(p.name for p in srv.iterdir()) == sorted(
        [".big.bin.cdlib-up-ba9876543210", "big.bin"]
    )


def test_short_stdin_installs_nothing(fleet: Fleet, tmp_path: Path) -> None:
    """The sender died midway: the host saw fewer bytes than announced."""
    fleet.reset()
    conn, _ = _conn(fleet, tmp_path)
    dest = fleet.path(1, "/srv/conf")
    dest.write_text("old\n")
    try:
        res = conn.run(
            atomic_write_command("/srv/conf", "0600", None, None, size=100), stdin=b"new"
        )
        assert not res.ok and "short input" in res.stderr
        whole = conn.run(
            atomic_write_command("/srv/conf", "0600", None, None, size=3), stdin=b"new"
        )
        assert whole.ok, whole.stderr
    finally:
        conn.close()
    assert dest.read_text() == "new"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["conf"]
