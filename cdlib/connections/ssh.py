"""The ``ssh`` transport, through fabric (paramiko underneath).

One connection per host for the whole run. Commands go through one resident shell
per host (:mod:`cdlib.connections.resident`), so the login shell starts once, not once
per command; a command that arrives while that shell is busy gets a fresh channel of
the same transport. Raw file transfers (``put``/``get``) go over one SFTP session. Host
keys are checked against known_hosts by default.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any, Literal, cast

import paramiko
from paramiko import sftp as sftp_const

from cdlib.connections.base import Become, CommandResult, Connection, UnreachableError
from cdlib.connections.resident import ResidentShell, ShellGone

HostKeyPolicy = Literal["strict", "accept-new", "off"]


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a host seen for the first time and record its key (like ``accept-new``)."""

    _lock = threading.Lock()

    def __init__(self, path: str | None) -> None:
        self.path = path

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.path:
            with self._lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


_known_lock = threading.Lock()
_known: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}


def _parsed_known_hosts(path: str) -> paramiko.HostKeys:
    """The parsed known_hosts file at ``path``, cached until its mtime or size changes."""
    st = os.stat(path)
    version = (st.st_mtime_ns, st.st_size)
    with _known_lock:
        hit = _known.get(path)
        if hit is not None and hit[0] == version:
            return hit[1]
        keys = paramiko.HostKeys()
        keys.load(path)
        _known[path] = (version, keys)
        return keys


def _create_private(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPFile:
    """Open a new file at ``path`` for writing, created 0600 by the server's ``open(2)``.

    paramiko's ``open`` sends no permissions (the file is born 0666 & ~umask, readable by
    others before its mode can be changed), so the SFTP open request is made here with
    them. Exclusive create: a file (or symlink) already there is removed first, never
    followed or written through.
    """
    attrs = paramiko.SFTPAttributes()
    attrs.st_mode = 0o600
    flags = sftp_const.SFTP_FLAG_WRITE | sftp_const.SFTP_FLAG_CREATE | sftp_const.SFTP_FLAG_EXCL
    for attempt in (1, 2):
        try:
            kind, msg = cast(Any, sftp)._request(sftp_const.CMD_OPEN, path, flags, attrs)
        except OSError:
            if attempt == 2:
                raise
            with contextlib.suppress(OSError):
                sftp.remove(path)
            continue
        if kind != sftp_const.CMD_HANDLE:
            raise paramiko.SFTPError("Expected handle")
        return paramiko.SFTPFile(sftp, msg.get_binary(), "wb")
    raise AssertionError("unreachable")


class SSHConnection(Connection):
    """Commands and files over SSH.

    Args:
        host: inventory name (used in messages).
        address: where to connect; defaults to ``host``.
        port: SSH port.
        user: login user (default: fabric/ssh config, then the local user).
        key_file: private key path.
        password: login password (prefer keys).
        known_hosts: known_hosts file to check host keys against (in addition to the
            user's ``~/.ssh/known_hosts``).
        host_key_policy: ``strict`` (default: unknown keys are refused), ``accept-new``
            (trust and record a host's first key; a changed key is still refused) or
            ``off`` (no checking; for throw-away hosts only).
        connect_timeout: seconds for TCP connect and SSH handshake.
        become: run commands through sudo as another user.
        resident_shell: run commands through one resident ``/bin/sh`` per host (the
            default) rather than one exec request each; see
            :mod:`cdlib.connections.resident`.
    """

    transport = "ssh"

    def __init__(
        self,
        host: str,
        *,
        address: str | None = None,
        port: int = 22,
        user: str | None = None,
        key_file: str | None = None,
        password: str | None = None,
        known_hosts: str | None = None,
        host_key_policy: HostKeyPolicy = "strict",
        connect_timeout: float = 10.0,
        become: Become | None = None,
        resident_shell: bool = True,
    ) -> None:
        super().__init__(host, become=become)
        self.resident_shell = resident_shell
        self._shell: ResidentShell | None = None
        self._shell_lock = threading.Lock()
        self.address = address or host
        self.port = port
        self.user = user
        self.key_file = key_file
        self._password = password
        self.known_hosts = known_hosts
        self.host_key_policy = host_key_policy
        self.connect_timeout = connect_timeout
        self._fabric: Any = None
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_lock = threading.Lock()

    def login_user(self) -> str:
        """The SSH login user."""
        if self._fabric is not None:
            return str(self._fabric.user)
        return self.user or os.environ.get("USER", "")

    def _connect(self) -> None:
        from fabric import Config
        from fabric import Connection as FabricConnection

        connect_kwargs: dict[str, Any] = {
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
        }
        if self.key_file:
            connect_kwargs["key_filename"] = os.path.expanduser(self.key_file)
            connect_kwargs["look_for_keys"] = False
        if self._password is not None:
            connect_kwargs["password"] = self._password
        # An empty Config: no ~/.fabric.yaml surprises; ~/.ssh/config is still honoured.
        fc = FabricConnection(
            host=self.address,
            user=self.user,
            port=self.port,
            connect_timeout=self.connect_timeout,
            connect_kwargs=connect_kwargs,
            config=Config(),
        )
        client: paramiko.SSHClient = fc.client
        # fabric trusts unknown hosts by default; cdlib does not.
        if self.host_key_policy == "strict":
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        elif self.host_key_policy == "accept-new":
            client.set_missing_host_key_policy(_AcceptNew(self.known_hosts))
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        if self.known_hosts:
            try:
                if self.host_key_policy == "off":
                    # paramiko's AutoAddPolicy saves new keys back to a loaded file.
                    client.load_host_keys(os.path.expanduser(self.known_hosts))
                else:
                    self._add_known_keys(client)
            except FileNotFoundError:
                if self.host_key_policy == "strict":
                    raise UnreachableError(
                        self.host, f"known_hosts file {self.known_hosts} not found"
                    ) from None
                Path(self.known_hosts).touch()
        try:
            fc.open()
        except paramiko.BadHostKeyException as exc:
            raise UnreachableError(
                self.host,
                f"host key for {self.address} has CHANGED (got {exc.key.get_name()}); "
                "possible man-in-the-middle; update known_hosts if the change is expected",
            ) from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                text = (
                    f"host key of {self.address} is unknown (not in known_hosts); add it with "
                    f"ssh-keyscan, or use host_key_policy='accept-new'"
                )
            elif isinstance(exc, paramiko.AuthenticationException):
                text = f"authentication failed for {fc.user}@{self.address}: {exc}"
            raise UnreachableError(self.host, text) from None
        except TimeoutError:
            raise UnreachableError(
                self.host,
                f"connect to {self.address}:{self.port} timed out after {self.connect_timeout:g}s",
            ) from None
        except OSError as exc:
            raise UnreachableError(
                self.host, f"cannot connect to {self.address}:{self.port}: {exc.strerror or exc}"
            ) from None
        # paramiko leaves Nagle's algorithm on: a small request sent while the previous
        # one is unacknowledged waits for the peer's delayed ACK (40 ms on Linux).
        with contextlib.suppress(OSError, AttributeError):
            fc.client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._fabric = fc

    def _add_known_keys(self, client: paramiko.SSHClient) -> None:
        """Give ``client`` this host's entries of the known_hosts file.

        The file is parsed once per process (and again when it changes), not once per
        connection: with one line per host, parsing it for every host is quadratic.
        """
        known = _parsed_known_hosts(os.path.expanduser(str(self.known_hosts)))
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        for key_type, key in (known.lookup(name) or {}).items():
            client.get_host_keys().add(name, key_type, key)

    def _transport(self) -> paramiko.Transport:
        t = self._fabric.client.get_transport() if self._fabric else None
        if t is None or not t.is_active():
            raise UnreachableError(self.host, "connection lost")
        return t  # type: ignore[no-any-return]

    def _run(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult:
        if self.resident_shell and self._shell_lock.acquire(blocking=False):
            try:
                return self._run_resident(command, stdin=stdin, timeout=timeout, display=display)
            finally:
                self._shell_lock.release()
        return self._run_exec(command, stdin=stdin, timeout=timeout, display=display)

    def _run_resident(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult:
        """Run through the resident shell (caller holds ``_shell_lock``)."""
        try:
            if self._shell is None or not self._shell.alive:
                self._shell = ResidentShell(self._transport(), self.connect_timeout)
            res = self._shell.run(command, stdin, timeout)
        except TimeoutError:
            # The command may still be running; this shell cannot be used again.
            self._drop_shell()
            return CommandResult(display, 124, "", f"timed out after {timeout}s")
        except ShellGone as gone:
            self._drop_shell()
            self._raise_if_lost()
            out, err = (b.decode("utf-8", "replace") for b in gone.args)
            return CommandResult(display, 255, out, err + "\nthe remote shell ended unexpectedly")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self._drop_shell()
            raise UnreachableError(
                self.host, f"connection lost: {exc or type(exc).__name__}"
            ) from None
        return CommandResult(
            display,
            res.code,
            res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"),
        )

    def _raise_if_lost(self) -> None:
        """Raise :class:`UnreachableError` if the connection, not just a channel, died.

        When sshd dies, paramiko closes the channels a moment before it marks the
        transport inactive; give it that moment.
        """
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            self._transport()
            time.sleep(0.02)

    def _drop_shell(self) -> None:
        if self._shell is not None:
            with contextlib.suppress(Exception):
                self._shell.close()
            self._shell = None

    def _run_exec(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult:
        """Run over a fresh exec channel."""
        try:
            chan = self._transport().open_session(timeout=self.connect_timeout)
            if timeout is not None:
                chan.settimeout(timeout)
            # sshd hands the command to the login shell; /bin/sh runs it, as on the
            # resident shell and the local transport.
            chan.exec_command("exec /bin/sh -c " + shlex.quote(command))
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out = chan.makefile("rb", -1).read()
            err = chan.makefile_stderr("rb", -1).read()
            code = chan.recv_exit_status()
            chan.close()
        except TimeoutError:
            return CommandResult(display, 124, "", f"timed out after {timeout}s")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise UnreachableError(
                self.host, f"connection lost: {exc or type(exc).__name__}"
            ) from None
        if code == -1:
            raise UnreachableError(self.host, "connection lost before the command finished")
        return CommandResult(
            display, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )

    def _sftp_client(self) -> paramiko.SFTPClient:
        with self._sftp_lock:
            if self._sftp is None:
                self._sftp = self._fabric.client.open_sftp()
            return self._sftp

    def _put(self, data: bytes, remote_path: str) -> None:
        try:
            sftp = self._sftp_client()
            fh = _create_private(sftp, remote_path)
            try:
                with fh:
                    fh.set_pipelined(True)
                    fh.write(data)
            except BaseException:
                # A partial upload (failure, interrupt) must not stay behind.
                with contextlib.suppress(Exception):
                    sftp.remove(remote_path)
                raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise UnreachableError(self.host, f"upload failed: {exc}") from None

    def _get(self, remote_path: str) -> bytes:
        try:
            with self._sftp_client().open(remote_path, "rb") as fh:
                fh.prefetch()
                return fh.read()
        except (paramiko.SSHException, EOFError) as exc:
            raise UnreachableError(self.host, f"download failed: {exc}") from None

    def close(self) -> None:
        """Close the resident shell, SFTP and the SSH connection."""
        self._drop_shell()
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None
        if self._fabric is not None:
            with contextlib.suppress(Exception):
                self._fabric.close()
            self._fabric = None
        self._connected = False
