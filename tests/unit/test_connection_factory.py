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
    conn = cdlib.api.connection_for(Host("web1", hv))
    assert isinstance(conn, SSHConnection)
    assert conn.resident_shell is expected


def test_resident_shell_var_rejects_other_values() -> None:
    host = Host("web1", {"cdlib_resident_shell": "sometimes"})
    with pytest.raises(ValueError, match="web1: cdlib_resident_shell must be true or false"):
        cdlib.api.connection_for(host)


def test_timeouts_from_options_and_host_vars() -> None:
    opts = cdlib.api.ConnectionOptions(command_timeout=60, keepalive_interval=5, connect_timeout=3)
    conn = cdlib.api.connection_for(Host("web1", {"cdlib_keepalive_count": "4"}), opts)
    assert isinstance(conn, SSHConnection)
    assert (conn.connect_timeout, conn.command_timeout) == (3, 60)
    assert (conn.keepalive_interval, conn.keepalive_count) == (5, 4)
    conn = cdlib.api.connection_for(
        Host("web1", {"cdlib_command_timeout": 0, "cdlib_keepalive_interval": "1.5"}), opts
    )
    assert isinstance(conn, SSHConnection)
    assert (conn.command_timeout, conn.keepalive_interval) == (0, 1.5)
    defaults = cdlib.api.connection_for(Host("web1", {}))
    assert isinstance(defaults, SSHConnection)
    assert (defaults.command_timeout, defaults.keepalive_interval) == (3600, 15)
    assert defaults.keepalive_count == 3


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("cdlib_command_timeout", "soon"),
        ("cdlib_keepalive_interval", -1),
        ("cdlib_keepalive_count", "2.5"),
        ("ansible_timeout", True),
    ],
)
def test_timeout_vars_reject_bad_values(var: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"host web1: {var} must be"):
        cdlib.api.connection_for(Host("web1", {var: value}))
