"""What OpenSSH's client configuration says about connecting to one host.

``~/.ssh/config`` then ``/etc/ssh/ssh_config``, parsed by paramiko's ``SSHConfig``; as
``ssh`` reads them, the first value found for an option wins. cdlib uses ``HostName``,
``User``, ``Port``, ``IdentityFile``, ``ProxyJump`` and ``ProxyCommand`` from here,
and the known_hosts options (``UserKnownHostsFile``, ``GlobalKnownHostsFile``,
``HostKeyAlias``, ``HashKnownHosts``) through
:func:`cdlib.connections.known_hosts.files_from_config`. Settings from the inventory
(``ansible_user``, ``ansible_port``, ``ansible_ssh_private_key_file``) win over the files,
as ``ssh``'s command-line options do.

The files are parsed once per process and again only when one of them changes.
"""

from __future__ import annotations

import getpass
import os
import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import paramiko

#: Read in this order; the first value found for an option wins.
CONFIG_FILES = ("~/.ssh/config", "/etc/ssh/ssh_config")


class SSHConfigError(Exception):
    """A client configuration file cannot be read or asks for what cdlib cannot do."""


@dataclass(frozen=True)
class HostConfig:
    """How to reach one host, from its inventory settings and the client configuration."""

    #: Where to connect (``HostName``, else the name asked for).
    hostname: str
    port: int
    user: str
    #: ``IdentityFile`` values that exist, in order (a missing one is skipped, as ssh does).
    identity_files: tuple[str, ...] = ()
    #: ``ProxyJump`` hops, first to last (``user@host:port`` each).
    proxy_jump: tuple[str, ...] = ()
    #: ``ProxyCommand`` with its ``%`` tokens expanded.
    proxy_command: str | None = None
    #: The whole lookup, lower-case option names (for the known_hosts options).
    options: Mapping[str, object] = field(default_factory=dict)

    def proxy_argv(self, timeout: float) -> list[str] | None:
        """The command that carries the connection, or None for a direct one.

        ``ProxyJump`` goes through OpenSSH itself (``ssh -W host:port -J ... first``),
        exactly as ``ssh -J`` does: the jump hosts' keys are checked by ssh against the
        same known_hosts files, and their own ssh_config entries apply. ``BatchMode``
        keeps it from prompting in the middle of a run.
        """
        if not self.proxy_jump:
            return shlex.split(self.proxy_command) if self.proxy_command else None
        first, rest = self.proxy_jump[0], self.proxy_jump[1:]
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(timeout))}"]
        argv += ["-W", f"{host}:{self.port}"]
        if rest:
            argv += ["-J", ",".join(rest)]
        return [*argv, "--", first]


_lock = threading.Lock()
_parsed: dict[tuple[tuple[str, int, int], ...], paramiko.SSHConfig] = {}


def _config(paths: Sequence[str]) -> paramiko.SSHConfig:
    stamp: list[tuple[str, int, int]] = []
    for raw in paths:
        path = os.path.expanduser(raw)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SSHConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        stamp.append((path, st.st_mtime_ns, st.st_size))
    key = tuple(stamp)
    with _lock:
        found = _parsed.get(key)
        if found is not None:
            return found
        cfg = paramiko.SSHConfig()
        for path, _, _ in stamp:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    cfg.parse(f)
            except OSError as exc:
                raise SSHConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
            except Exception as exc:  # paramiko's parser: a line it cannot read
                raise SSHConfigError(f"{path}: {exc}") from None
        _parsed.clear()
        _parsed[key] = cfg
        return cfg


def _words(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def resolve(
    name: str,
    *,
    port: int | None = None,
    user: str | None = None,
    paths: Sequence[str] = CONFIG_FILES,
) -> HostConfig:
    """How to reach ``name``: the inventory's ``port`` and ``user`` when given, else the
    client configuration's, else port 22 and the local user."""
    cfg = _config(paths)
    try:
        opts = dict(cfg.lookup(name))
    except ImportError:
        # paramiko runs `Match exec` through invoke, which cdlib does not install.
        raise SSHConfigError(
            f"ssh config for {name}: 'Match exec' is not supported (cdlib does not run "
            "commands to choose a Host block)"
        ) from None
    except Exception as exc:
        raise SSHConfigError(f"ssh config for {name}: {exc}") from None
    hostname = str(opts.get("hostname") or name)
    try:
        found_port = int(str(opts.get("port", 22)))
    except ValueError:
        raise SSHConfigError(
            f"ssh config for {name}: Port {opts.get('port')!r} is not a number"
        ) from None
    ids = tuple(
        p
        for p in (os.path.expanduser(w) for w in _words(opts.get("identityfile")))
        if os.path.isfile(p)
    )
    jump_raw = str(opts.get("proxyjump") or "")
    jump = () if jump_raw.lower() in ("", "none") else tuple(jump_raw.split(","))
    command = str(opts.get("proxycommand") or "")
    return HostConfig(
        hostname=hostname,
        port=port if port is not None else found_port,
        user=user or str(opts.get("user") or "") or getpass.getuser(),
        identity_files=ids,
        proxy_jump=jump,
        proxy_command=None if command.lower() in ("", "none") else command,
        options=opts,
    )


__all__ = ["CONFIG_FILES", "HostConfig", "SSHConfigError", "resolve"]
