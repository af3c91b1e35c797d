"""The connection interface: run a command, put and get a file on one host.

Every byte cdlib exchanges with a host goes through a :class:`Connection`, so a
transport (local subprocess, SSH, later AWS SSM) is one small class, and tests can
count round trips on any of them.
"""

from __future__ import annotations

import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from cdlib.connections.shell import env_from_stdin
from cdlib.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE, CdlibError


class TransportError(CdlibError):
    """Base class of transport errors."""


class ConnectionSettingsError(TransportError, ValueError):
    """A host's connection settings are wrong (an unknown ``ansible_connection``, a
    timeout that is not a number ...): bad input, found before connecting."""

    exit_code = EXIT_BAD_INPUT


class UnreachableError(TransportError):
    """The host cannot be reached: DNS, refused, timeout, authentication or host key."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: unreachable: {reason}")
        self.host = host
        self.reason = reason


@dataclass(frozen=True)
class CommandResult:
    """What a remote command returned."""

    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0


@dataclass
class ConnectionStats:
    """Counters of the work a connection did; round trips are commands plus transfers."""

    commands: int = 0
    puts: int = 0
    gets: int = 0
    connects: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def round_trips(self) -> int:
        """Commands and file transfers, the unit that costs latency."""
        return self.commands + self.puts + self.gets

    def bump(self, name: str) -> None:
        """Add one to counter ``name`` (thread-safe)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass(frozen=True)
class Become:
    """Privilege escalation for commands: run as ``user`` through sudo."""

    user: str = "root"
    password: str | None = None


class Connection(ABC):
    """A transport to one host.

    Subclasses implement :meth:`_connect`, :meth:`_run`, :meth:`_put`, :meth:`_get`
    and :meth:`close`; the public methods add counting and lazy connection.
    A connection is opened once and reused for the whole run.
    """

    #: Name used in ``ansible_connection`` and error messages.
    transport: str = "base"

    def __init__(self, host: str, *, become: Become | None = None) -> None:
        self.host = host
        self.become = become
        self.stats = ConnectionStats()
        self._connected = False
        self._connect_lock = threading.Lock()

    # -- public API -------------------------------------------------------
    def connect(self) -> None:
        """Open the connection (idempotent). Raises :class:`UnreachableError`."""
        with self._connect_lock:
            if self._connected:
                return
            self._connect()
            self._connected = True
            self.stats.bump("connects")

    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        sudo: bool | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run ``command`` with ``sh -c`` on the host and return its result.

        ``sudo`` defaults to whether the connection was made with ``become``.
        ``env`` values travel on stdin ahead of ``stdin`` (see
        :func:`~cdlib.connections.shell.env_from_stdin`), never in the host's argv, so a
        secret in them is not visible to other users of the host; the command reads its
        own ``stdin`` as given.
        A non-zero exit is a result, not an exception; transport failures raise
        :class:`UnreachableError`.
        """
        self.connect()
        full = command
        if env:
            prefix, env_data = env_from_stdin(env)
            full = prefix + command
            stdin = env_data + (stdin or b"")
        use_sudo = self.become is not None if sudo is None else sudo
        pw: bytes | None = None
        if use_sudo and self.become is not None and self._needs_sudo():
            full, pw = self._sudo_wrap(full)
        if pw is not None:
            stdin = pw + (stdin or b"")
        self.stats.bump("commands")
        return self._run(full, stdin=stdin, timeout=timeout, display=command)

    def put(self, data: bytes, remote_path: str) -> None:
        """Write ``data`` to a new file ``remote_path``, created 0600 before any byte is
        written (whatever was at that path is replaced, never followed); a transfer that
        fails or is interrupted removes its partial file.

        Tasks use :func:`cdlib.connections.shell.atomic_write_command` for atomic writes;
        this raw transfer is for large uploads into temporary names (the caller sets the
        final mode when it installs the file).
        """
        self.connect()
        self.stats.bump("puts")
        self._put(data, remote_path)

    def get(self, remote_path: str) -> bytes:
        """Read ``remote_path`` from the host."""
        self.connect()
        self.stats.bump("gets")
        return self._get(remote_path)

    @abstractmethod
    def close(self) -> None:
        """Close the connection; safe to call twice."""

    # -- helpers ------------------------------------------------------------
    def _needs_sudo(self) -> bool:
        """Whether commands must go through sudo (not when already that user)."""
        assert self.become is not None
        return self.login_user() != self.become.user

    def login_user(self) -> str:
        """The user the transport logs in as."""
        return ""

    def _sudo_wrap(self, command: str) -> tuple[str, bytes | None]:
        assert self.become is not None
        user = shlex.quote(self.become.user)
        inner = shlex.quote(command)
        if self.become.password is None:
            return f"sudo -n -H -u {user} -- sh -c {inner}", None
        # -k forgets cached credentials so sudo always reads the password line
        # from stdin; without it a cached timestamp would hand the password to
        # the command itself.
        return (
            f"sudo -k -S -p '' -H -u {user} -- sh -c {inner}",
            self.become.password.encode() + b"\n",
        )

    # -- transport --------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _run(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult: ...

    @abstractmethod
    def _put(self, data: bytes, remote_path: str) -> None: ...

    @abstractmethod
    def _get(self, remote_path: str) -> bytes: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}>"
