"""Host key checks against a known_hosts file that is parsed once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdlib.connections.base import UnreachableError
from cdlib.connections.ssh import SSHConnection
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _conn(fleet: Fleet, k: int, known: Path) -> SSHConnection:
    h = fleet.host(k)
    return SSHConnection(
        h.name,
        address=h.address,
        user="root",
        key_file=str(fleet.key_file),
        known_hosts=str(known),
    )


def test_changed_key_is_refused_and_a_fixed_file_is_reread(fleet: Fleet, tmp_path: Path) -> None:
    lines = fleet.known_hosts.read_text().splitlines()
    addr1, addr2 = fleet.host(1).address, fleet.host(2).address
    right = [ln for ln in lines if ln.startswith(addr1 + " ")]
    other = [ln for ln in lines if ln.startswith(addr2 + " ")]
    assert right and other
    known = tmp_path / "known_hosts"
    # host1's address listed with host2's key: a changed key must be refused ...
    known.write_text(other[0].replace(addr2, addr1, 1) + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(UnreachableError, match="CHANGED"):
        _conn(fleet, 1, known).connect()
    # ... while host2, listed right in the same (cached) file, connects.
    c2 = _conn(fleet, 2, known)
    try:
        assert c2.run("echo ok").stdout == "ok\n"
    finally:
        c2.close()
    # The file is fixed while the process runs: the next connection sees the fix.
    known.write_text("\n".join(lines) + "\n")
    c1 = _conn(fleet, 1, known)
    try:
        assert c1.run("echo ok").stdout == "ok\n"
    finally:
        c1.close()


def test_host_missing_from_the_file_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    addr1 = fleet.host(1).address
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(ln + "\n" for ln in fleet.known_hosts.read_text().splitlines() if addr1 not in ln)
    )
    with pytest.raises(UnreachableError, match="unknown"):
        _conn(fleet, 1, known).connect()
