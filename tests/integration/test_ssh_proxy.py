"""~/.ssh/config on the real sshd fleet: HostName aliases, and a connection carried by
ProxyCommand through another host, with the target's key still checked by cdlib."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from cdlib.connections.base import UnreachableError
from cdlib.connections.ssh import SSHConnection
from tests.fleet import Fleet

pytestmark = [
    pytest.mark.fleet,
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client"),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own (cdlib reads ~/.ssh/config from $HOME)."""
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(h))
    return h


def _conn(fleet: Fleet, name: str, known: Path, timeout: float = 10) -> SSHConnection:
    return SSHConnection(
        name,
        address=name,
        user="root",
        key_file=str(fleet.key_file),
        known_hosts=str(known),
        connect_timeout=timeout,
    )


def test_host_name_alias_and_proxy_command_through_another_host(
    fleet: Fleet, home: Path, tmp_path: Path
) -> None:
    hop, target = fleet.host(1).address, fleet.host(2).address
    # The hop's own client config, for the ssh that ProxyCommand starts (OpenSSH reads
    # the passwd entry's home, not $HOME, so it is named with -F).
    hop_cfg = tmp_path / "hop_config"
    hop_cfg.write_text(
        f"Host {hop}\n  User root\n  IdentityFile {fleet.key_file}\n"
        f"  UserKnownHostsFile {fleet.known_hosts}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
    )
    proxy = f"ssh -F {shlex.quote(str(hop_cfg))} -W %h:%p {hop}"
    (home / ".ssh" / "config").write_text(
        f"Host direct-alias\n  HostName {target}\n"
        f"Host via-hop\n  HostName {target}\n  ProxyCommand {proxy}\n"
        f"Host dead-hop\n  HostName {target}\n  ProxyCommand false\n"
    )
    for name in ("direct-alias", "via-hop"):
        conn = _conn(fleet, name, fleet.known_hosts)
        try:
            # host2 answers (its hostname is host2's private name in the fleet).
            assert conn.run("echo ok").stdout == "ok\n", name
            assert conn.target is not None and conn.target.hostname == target
        finally:
            conn.close()
    # Through the proxy cdlib still checks the target's own key: a file that lists
    # the target with another host's key refuses it.
    lines = fleet.known_hosts.read_text().splitlines()
    wrong = tmp_path / "wrong_known_hosts"
    hop_line = next(ln for ln in lines if ln.split()[0] == hop)
    wrong.write_text(hop_line.replace(hop, target, 1) + "\n")
    with pytest.raises(UnreachableError, match="CHANGED"):
        _conn(fleet, "via-hop", wrong).connect()
    # The proxy really carries it: a proxy that connects nowhere leaves the host
    # unreachable, though the target itself listens.
    with pytest.raises(UnreachableError, match=r"through ProxyCommand"):
        _conn(fleet, "dead-hop", fleet.known_hosts, timeout=2).connect()
