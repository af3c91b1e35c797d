"""Build the right :class:`Connection` for an inventory host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import cast

from cdlib.connections.base import Become, Connection, ConnectionSettingsError
from cdlib.connections.local import LocalConnection
from cdlib.inventory.model import Host

TRANSPORTS = ("ssh", "local")


@dataclass(frozen=True)
class ConnectionOptions:
    """Run-wide connection settings (CLI flags); host vars override them."""

    host_key_policy: str = "strict"
    connect_timeout: float = 10.0
    become_password: str | None = None
    user: str | None = None
    command_timeout: float = 3600.0
    keepalive_interval: float = 15.0
    keepalive_count: int = 3


def _number(host: Host, name: str, default: float, *, integer: bool = False) -> float:
    """Host var ``name`` as a number of at least 0, or a clear error naming host and var."""
    raw = host.setting(name, default=default)
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        value = -1
    if value < 0 or isinstance(raw, bool):
        kind = "a whole number" if integer else "a number of seconds"
        raise ConnectionSettingsError(
            f"host {host.name}: {name} must be {kind} (0 or more), got {raw!r}"
        )
    return value


def connection_for(host: Host, opts: ConnectionOptions | None = None) -> Connection:
    """A connection to ``host`` from its vars (``ansible_connection``, ``ansible_host`` ...).

    Host vars understood beyond Ansible's: ``cdlib_known_hosts_file``,
    ``cdlib_host_key_policy`` (``strict``, ``accept-new``, ``off``),
    ``cdlib_resident_shell`` (``true`` by default; ``false`` runs every command in its
    own SSH session), ``cdlib_command_timeout``, ``cdlib_keepalive_interval`` and
    ``cdlib_keepalive_count`` (see :class:`~cdlib.connections.ssh.SSHConnection`);
    ``ansible_timeout`` is the connect timeout.
    """
    opts = opts or ConnectionOptions()
    become = None
    if host.become:
        pw = host.setting("ansible_become_password", "ansible_become_pass")
        become = Become(
            user=host.become_user,
            password=str(pw) if pw is not None else opts.become_password,
        )
    kind = host.connection
    if kind == "local":
        return LocalConnection(host.name, become=become)
    if kind not in ("ssh", "paramiko", "smart"):
        raise ConnectionSettingsError(
            f"host {host.name}: unknown ansible_connection {kind!r} "
            f"(cdlib supports: {', '.join(TRANSPORTS)})"
        )
    from cdlib.connections.ssh import HostKeyPolicy, SSHConnection

    policy = str(host.setting("cdlib_host_key_policy", default=opts.host_key_policy))
    if policy not in ("strict", "accept-new", "off"):
        raise ConnectionSettingsError(
            f"host {host.name}: cdlib_host_key_policy must be strict, accept-new or off, "
            f"got {policy!r}"
        )
    resident = host.setting("cdlib_resident_shell", default=True)
    if isinstance(resident, str) and resident.lower() in ("true", "yes", "1", "false", "no", "0"):
        resident = resident.lower() in ("true", "yes", "1")
    if not isinstance(resident, bool):
        raise ConnectionSettingsError(
            f"host {host.name}: cdlib_resident_shell must be true or false, got {resident!r}"
        )
    key_file = os.path.expanduser(host.key_file) if host.key_file else None
    if key_file is not None and not os.path.isfile(key_file):
        # paramiko would say only "No such file or directory", naming no file.
        raise ConnectionSettingsError(
            f"host {host.name}: ansible_ssh_private_key_file {key_file!r} does not exist"
            if not os.path.exists(key_file)
            else f"host {host.name}: ansible_ssh_private_key_file {key_file!r} is not a file"
        )
    known = host.setting("cdlib_known_hosts_file")
    pw = host.setting("ansible_password", "ansible_ssh_pass")
    # Without ansible_port, the ssh config's Port applies (as ssh without -p).
    given_port = host.setting("ansible_port", "ansible_ssh_port") is not None
    return SSHConnection(
        host.name,
        address=host.address,
        port=host.port if given_port else None,
        user=host.user or opts.user,
        key_file=key_file,
        password=str(pw) if pw is not None else None,
        known_hosts=str(known) if known else None,
        host_key_policy=cast(HostKeyPolicy, policy),
        connect_timeout=_number(host, "ansible_timeout", opts.connect_timeout),
        command_timeout=_number(host, "cdlib_command_timeout", opts.command_timeout),
        keepalive_interval=_number(host, "cdlib_keepalive_interval", opts.keepalive_interval),
        keepalive_count=int(
            _number(host, "cdlib_keepalive_count", opts.keepalive_count, integer=True)
        ),
        become=become,
        resident_shell=resident,
    )
