"""The one local atomic-write helper: modes, exclusive create, nothing left on failure."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from cdlib.atomicfile import write_atomic


def test_private_is_0600_and_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    secret = tmp_path / "d" / "secret"
    write_atomic(secret, "s3cret", private=True)
    assert secret.stat().st_mode & 0o777 == 0o600 and secret.read_text() == "s3cret"
    shared = tmp_path / "shared"
    write_atomic(shared, b"a")
    assert shared.stat().st_mode & 0o777 == 0o644
    shared.chmod(0o640)
    write_atomic(shared, b"b")
    assert shared.stat().st_mode & 0o777 == 0o640 and shared.read_bytes() == b"b"
    write_atomic(shared, b"c", mode=0o600)
    assert shared.stat().st_mode & 0o777 == 0o600


def test_exclusive_refuses_an_existing_name(tmp_path: Path) -> None:
    p = tmp_path / "lock"
    write_atomic(p, "one", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(p, "two", exclusive=True)
    assert p.read_text() == "one" and os.listdir(tmp_path) == ["lock"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    p = tmp_path / "f"
    p.write_text("old")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(p, "new")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["f"]
