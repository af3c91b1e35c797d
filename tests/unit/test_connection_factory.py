"""Host vars that choose how cdlib talks to a host (cdlib.connections.factory)."""

from __future__ import annotations

import pytest

import cdlib
from cdlib import Host
from cdlib.connections.ssh import SSHConnection


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), (True, True), (False, False), ("no", False), ("True", True)],
)
def test_resident_shell_var(value: object, expected: bool) -> None:
    hv = {"ansible_host": "127.0.0.1"}
    if value is not None:
        hv["cdlib_resident_shell"] = value  # type: ignore[assignment]
    conn = cdlib.connection_for(Host("web1", hv))
    assert isinstance(conn, SSHConnection)
    assert conn.resident_shell is expected


def test_resident_shell_var_rejects_other_values() -> None:
    host = Host("web1", {"cdlib_resident_shell": "sometimes"})
    with pytest.raises(ValueError, match="web1: cdlib_resident_shell must be true or false"):
        cdlib.connection_for(host)
