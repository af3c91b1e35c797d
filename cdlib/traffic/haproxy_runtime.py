"""Socket I/O with HAProxy's runtime API (the admin ``stats socket``).

One connection per command, in HAProxy's non-interactive mode: send one line,
read until HAProxy closes. Parsing lives in :mod:`cdlib.traffic.haproxy_parse`.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from cdlib.traffic.base import TrafficError
from cdlib.traffic.haproxy_parse import (
    ServerStat,
    ServerState,
    parse_servers_state,
    server_stats,
)

#: Answers HAProxy gives on failure; success answers are empty or informative.
_ERROR_MARKERS = (
    "no such",
    "unknown command",
    "can only be",
    "require",
    "not found",
    "invalid",
    "cannot",
    "can't",
    "error",
    "permission denied",
    "expects",
    "unexpected",
    "not allowed",
    "already exists",
    "must be",
)


class RuntimeAPIError(TrafficError):
    """HAProxy refused a runtime command, or its socket cannot be reached."""


@dataclass
class RuntimeClient:
    """Client of one HAProxy admin socket.

    ``address`` is a unix socket path, or ``host:port`` for a TCP admin socket
    (``stats socket ipv4@127.0.0.1:9999 level admin``).
    """

    address: str
    timeout: float = 5.0
    #: Commands sent, for tests and logs (never contains secrets: the API has none).
    commands: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _connect(self) -> socket.socket:
        if self.address.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = self.address
        else:
            host, _, port = self.address.rpartition(":")
            if not host or not port.isdigit():
                raise RuntimeAPIError(
                    f"runtime API address {self.address!r}: give a socket path or host:port"
                )
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError as exc:
            sock.close()
            raise RuntimeAPIError(f"HAProxy runtime API {self.address}: {exc}") from exc
        return sock

    def raw(self, command: str) -> str:
        """Send one command line and return HAProxy's whole answer."""
        if "\n" in command or ";" in command:
            # One command per call keeps error attribution exact.
            raise RuntimeAPIError(f"runtime command must be one line without ';': {command!r}")
        with self._lock:
            self.commands.append(command)
        sock = self._connect()
        chunks: list[bytes] = []
        try:
            sock.sendall(command.encode() + b"\n")
            # The master CLI answers only once it sees the end of the input.
            sock.shutdown(socket.SHUT_WR)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except OSError as exc:
            raise RuntimeAPIError(f"HAProxy runtime API {self.address}: {command}: {exc}") from exc
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", "replace")

    def execute(self, command: str, *, ok: tuple[str, ...] = ()) -> str:
        """Run a command that changes something; raise when HAProxy refuses it.

        ``ok`` lists answers that mean success although they look like errors.
        """
        answer = self.raw(command).strip()
        low = answer.lower()
        accepted = any(o.lower() in low for o in ok)
        if answer and not accepted and any(marker in low for marker in _ERROR_MARKERS):
            raise RuntimeAPIError(f"HAProxy refused {command!r}: {answer}")
        return answer

    # -- typed reads --------------------------------------------------------
    def show_stat(self, backend: str) -> list[ServerStat]:
        """The ``show stat`` rows of the servers of ``backend``."""
        return server_stats(self.raw("show stat"), backend)

    def show_servers_state(self, backend: str | None = None) -> list[ServerState]:
        """Parsed ``show servers state`` (of one backend, or all)."""
        text = self.raw(f"show servers state {backend}" if backend else "show servers state")
        if backend and text.strip().lower().startswith("can't find"):
            raise RuntimeAPIError(f"HAProxy has no backend {backend!r}")
        return parse_servers_state(text)

    def show_info(self) -> dict[str, str]:
        """``show info`` as a dict (``Pid``, ``Uptime_sec``, ``Version`` ...)."""
        out: dict[str, str] = {}
        for line in self.raw("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out


__all__ = ["RuntimeAPIError", "RuntimeClient"]
