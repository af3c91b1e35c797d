"""The ``ssh`` transport, through paramiko.

One connection per host for the whole run. Commands go through one resident shell
per host (:mod:`cdlib.connections.resident`), so the login shell starts once, not once
per command; a command that arrives while that shell is busy gets a fresh channel of
the same transport. Raw file transfers (``put``/``get``) go over one SFTP session. Host
keys are checked against known_hosts by default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import socket
import threading
import time
from typing import Any, Literal, cast

import paramiko
from paramiko import sftp as sftp_const

from cdlib.connections import known_hosts as kh
from cdlib.connections import ssh_config
from cdlib.connections.base import Become, CommandResult, Connection, UnreachableError
from cdlib.connections.keepalive import Keepalive
from cdlib.connections.resident import ResidentShell, ShellGone
from cdlib.connections.ssh_config import HostConfig, SSHConfigError

# paramiko logs a failed handshake as an ERROR with its traceback; with no handler set
# that reaches stderr through logging's last resort. cdlib reports the failure itself
# (UnreachableError); ``cdlib run -vvv`` configures logging and shows paramiko's logs.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

HostKeyPolicy = Literal["strict", "accept-new", "off"]

#: Seconds a command may run when its caller gives no timeout (0: no limit).
DEFAULT_COMMAND_TIMEOUT = 3600.0
#: Seconds between keepalive probes, and how many may go unanswered.
DEFAULT_KEEPALIVE_INTERVAL = 15.0
DEFAULT_KEEPALIVE_COUNT = 3


class _HostKeyCheck(paramiko.MissingHostKeyPolicy):
    """Decide on the key a host offers from OpenSSH's known_hosts files.

    paramiko's own check is not used (the client is given no keys): it treats a host
    known only with another key type as a changed key, and cannot say which line
    holds the old key.
    """

    def __init__(
        self,
        host: str,
        name: str,
        policy: HostKeyPolicy,
        user_files: list[str],
        global_files: list[str],
        hashed: bool,
    ) -> None:
        self.host = host
        self.name = name
        self.policy = policy
        self.user_files = user_files
        self.global_files = global_files
        self.hashed = hashed

    def preferred_types(self) -> list[str]:
        """Key types known for the host, to ask for first (as OpenSSH does)."""
        out: list[str] = []
        for e in kh.lookup(self.user_files + self.global_files, self.name):
            if e.marker is None:
                types = ["rsa-sha2-512", "rsa-sha2-256"] if e.key_type == "ssh-rsa" else []
                out += [t for t in [*types, e.key_type] if t not in out]
        return out

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        key_type, blob = key.get_name(), key.asbytes()
        verdict = kh.check(
            kh.lookup(self.user_files + self.global_files, self.name), key_type, blob
        )
        if verdict.status == "new" and self.policy == "accept-new":
            if not self.user_files:
                raise UnreachableError(
                    self.host,
                    f"host key of {self.name} is unknown and there is no user known_hosts "
                    "file to record it in (UserKnownHostsFile none)",
                )
            verdict = kh.record(self.user_files[0], self.name, key_type, blob, hashed=self.hashed)
        if verdict.status == "revoked":
            assert verdict.entry is not None
            raise UnreachableError(
                self.host,
                f"the {key_type} host key of {self.name} ({kh.fingerprint(blob)}) is REVOKED "
                f"in {verdict.entry.where}",
            )
        if self.policy == "off" or verdict.status == "known":
            return
        if verdict.status == "changed":
            assert verdict.entry is not None
            raise UnreachableError(
                self.host,
                f"host key for {self.name} has CHANGED: its {key_type} key is now "
                f"{kh.fingerprint(blob)}; offending key in {verdict.entry.where}; possible "
                "man-in-the-middle; if the change is expected remove that line "
                f"(ssh-keygen -R {shlex.quote(self.name)} -f {shlex.quote(verdict.entry.path)})",
            )
        if verdict.status == "new" and self.policy == "strict":
            others = "".join(
                f"; known with a {e.key_type} key in {e.where}" for e in verdict.others
            )
            files = " ".join(self.user_files + self.global_files) or "(none)"
            raise UnreachableError(
                self.host,
                f"host key of {self.name} is unknown: no {key_type} key for it in {files}"
                f"{others}; add it with ssh-keyscan, or trust it on first use with "
                "--host-key-policy accept-new (host var cdlib_host_key_policy)",
            )


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
        port: SSH port (default: ``Port`` in the ssh config, then 22).
        user: login user (default: ``User`` in the ssh config, then the local user).
        key_file: private key path.
        password: login password (prefer keys).
        known_hosts: the user known_hosts file, instead of ``UserKnownHostsFile`` from
            ``~/.ssh/config`` (default ``~/.ssh/known_hosts ~/.ssh/known_hosts2``);
            the global files are read too. See :mod:`cdlib.connections.known_hosts`.
        host_key_policy: ``strict`` (default: unknown keys are refused), ``accept-new``
            (trust a key not known for the host and record it in the first user file;
            a changed key is refused) or ``off`` (only revoked keys are refused; for
            throw-away hosts only).
        connect_timeout: seconds for TCP connect, SSH handshake, login and opening a
            session.
        command_timeout: seconds a command may run when the caller gives no timeout
            (``0``: no limit); it then ends with exit code 124.
        keepalive_interval: seconds between keepalive probes (``0``: none); a host that
            leaves ``keepalive_count`` of them unanswered is reported unreachable.
        keepalive_count: see ``keepalive_interval``.
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
        port: int | None = None,
        user: str | None = None,
        key_file: str | None = None,
        password: str | None = None,
        known_hosts: str | None = None,
        host_key_policy: HostKeyPolicy = "strict",
        connect_timeout: float = 10.0,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_count: int = DEFAULT_KEEPALIVE_COUNT,
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
        self.command_timeout = command_timeout
        self.keepalive_interval = keepalive_interval
        self.keepalive_count = keepalive_count
        self._keepalive: Keepalive | None = None
        self._lost: str | None = None
        self._client: paramiko.SSHClient | None = None
        #: How the host was reached (inventory settings over the ssh config), once connected.
        self.target: HostConfig | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_lock = threading.Lock()

    def login_user(self) -> str:
        """The SSH login user."""
        if self.target is not None:
            return self.target.user
        return self.user or os.environ.get("USER", "")

    def _resolve(self) -> HostConfig:
        try:
            return ssh_config.resolve(self.address, port=self.port, user=self.user)
        except SSHConfigError as exc:
            raise UnreachableError(self.host, str(exc)) from None

    def _connect(self) -> None:
        target = self._resolve()
        client = paramiko.SSHClient()
        # The client is given no known keys: every key goes to the check, as OpenSSH's.
        checker = self._host_key_check(target)
        client.set_missing_host_key_policy(checker)
        preferred = checker.preferred_types()

        def transport(sock: Any, **kw: Any) -> paramiko.Transport:
            t = paramiko.Transport(sock, **kw)
            opts = t.get_security_options()
            # Ask for a key type already known for the host first, as OpenSSH does, so a
            # host known by its ECDSA key is not met with its Ed25519 key as a new one.
            first = [k for k in preferred if k in opts.key_types]
            opts.key_types = first + [k for k in opts.key_types if k not in first]
            return t

        kwargs: dict[str, Any] = {
            "hostname": target.hostname,
            "port": target.port,
            "username": target.user,
            "timeout": self.connect_timeout,
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
            "transport_factory": transport,
        }
        if self.key_file:
            kwargs["key_filename"] = [os.path.expanduser(self.key_file)]
            kwargs["look_for_keys"] = False
        elif target.identity_files:
            kwargs["key_filename"] = list(target.identity_files)
        if self._password is not None:
            kwargs["password"] = self._password
        try:
            kwargs["sock"] = self._proxy(target)
            self._open(client, target, kwargs)
        except BaseException:
            # A handshake that timed out leaves paramiko's transport thread running.
            with contextlib.suppress(Exception):
                client.close()
            raise
        # paramiko leaves Nagle's algorithm on: a small request sent while the previous
        # one is unacknowledged waits for the peer's delayed ACK (40 ms on Linux).
        t = client.get_transport()
        if t is not None and isinstance(t.sock, socket.socket):  # not through a proxy
            with contextlib.suppress(OSError):
                t.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        self.target = target
        self._lost = None
        if self.keepalive_interval > 0 and t is not None:
            self._keepalive = Keepalive(
                t, self.keepalive_interval, self.keepalive_count, self._dead
            )

    def _proxy(self, target: HostConfig) -> paramiko.ProxyCommand | None:
        """The process that carries the connection (``ProxyCommand``/``ProxyJump``), if any."""
        argv = target.proxy_argv(self.connect_timeout)
        if argv is None:
            return None
        try:
            return paramiko.ProxyCommand(shlex.join(argv))
        except paramiko.SSHException as exc:
            raise UnreachableError(
                self.host, f"cannot start the proxy command {argv[0]!r}: {exc}"
            ) from None

    def _open(self, client: paramiko.SSHClient, target: HostConfig, kwargs: dict[str, Any]) -> None:
        """Connect ``client``; every failure becomes :class:`UnreachableError`."""
        where = f"{target.hostname}:{target.port}"
        if target.proxy_jump:
            where += f" (through ProxyJump {','.join(target.proxy_jump)})"
        elif target.proxy_command:
            where += " (through ProxyCommand)"
        t0 = time.monotonic()
        try:
            client.connect(**kwargs)
        except paramiko.ProxyCommandFailure as exc:
            raise UnreachableError(self.host, f"{where}: the proxy command ended: {exc}") from None
        except paramiko.AuthenticationException as exc:
            raise UnreachableError(
                self.host, f"authentication failed for {target.user}@{target.hostname}: {exc}"
            ) from None
        except paramiko.SSHException as exc:
            text = str(exc)
            no_handshake = text == "No existing session" or "protocol banner" in text
            # paramiko says the same when the peer hung up as when it said nothing in
            # time; a hang-up (seen in the cause, or long before the timeout) means no
            # SSH server listens there.
            hung_up = isinstance(exc.__context__, EOFError | ConnectionError) or (
                time.monotonic() - t0 < self.connect_timeout / 2
            )
            if no_handshake and hung_up:
                text = (
                    f"{where} closed the connection without an SSH "
                    "greeting: is an SSH server listening on that port?"
                )
            elif no_handshake:
                # paramiko's words for a handshake that did not finish in time.
                text = (
                    f"no SSH handshake from {where} within "
                    f"{self.connect_timeout:g}s (sshd hung or overloaded?)"
                )
            raise UnreachableError(self.host, text) from None
        except TimeoutError:
            raise UnreachableError(
                self.host,
                f"connect to {where} timed out after {self.connect_timeout:g}s",
            ) from None
        except OSError as exc:
            raise UnreachableError(
                self.host, f"cannot connect to {where}: {exc.strerror or exc}"
            ) from None

    def _dead(self, reason: str) -> None:
        self._lost = reason

    def _host_key_check(self, target: HostConfig) -> _HostKeyCheck:
        """The host key check for ``target`` (its ssh config looked up)."""
        user_files, global_files = kh.files_from_config(
            target.options, user=target.user, host=target.hostname
        )
        if self.known_hosts:
            user_files = [os.path.expanduser(self.known_hosts)]
        alias = target.options.get("hostkeyalias")
        name = str(alias) if alias else kh.host_name(target.hostname, target.port)
        hashed = str(target.options.get("hashknownhosts", "no")).lower() == "yes"
        return _HostKeyCheck(
            self.host, name, self.host_key_policy, user_files, global_files, hashed
        )

    def _transport(self) -> paramiko.Transport:
        t = self._client.get_transport() if self._client else None
        if t is None or not t.is_active():
            raise UnreachableError(self.host, self._lost or "connection lost")
        return t

    def _run(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult:
        if timeout is None and self.command_timeout > 0:
            timeout = self.command_timeout
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
                self.host, self._lost or f"connection lost: {exc or type(exc).__name__}"
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
                self.host, self._lost or f"connection lost: {exc or type(exc).__name__}"
            ) from None
        if code == -1:
            raise UnreachableError(
                self.host, self._lost or "connection lost before the command finished"
            )
        return CommandResult(
            display, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )

    def _sftp_client(self) -> paramiko.SFTPClient:
        with self._sftp_lock:
            if self._sftp is None:
                assert self._client is not None
                self._sftp = self._client.open_sftp()
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
            raise UnreachableError(self.host, self._lost or f"upload failed: {exc}") from None

    def _get(self, remote_path: str) -> bytes:
        try:
            with self._sftp_client().open(remote_path, "rb") as fh:
                fh.prefetch()
                return fh.read()
        except (paramiko.SSHException, EOFError) as exc:
            raise UnreachableError(self.host, self._lost or f"download failed: {exc}") from None

    def close(self) -> None:
        """Close the resident shell, SFTP and the SSH connection."""
        if self._keepalive is not None:
            self._keepalive.stop()
            self._keepalive = None
        self._drop_shell()
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        self._connected = False
