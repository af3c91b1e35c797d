"""Notice a host that stopped answering (like OpenSSH's ``ServerAliveInterval``).

A host whose sshd is stopped (SIGSTOP), or whose network silently drops packets, keeps
the TCP connection open: reads on it wait forever. Every ``interval`` seconds this
watchdog sends a keepalive request the server must answer; when no answer comes within
``interval * count`` seconds it closes the transport, which ends every wait on it (the
connection then reports the host unreachable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import paramiko


class Keepalive:
    """A daemon thread probing ``transport``; ``on_dead(reason)`` runs before it closes it."""

    def __init__(
        self,
        transport: paramiko.Transport,
        interval: float,
        count: int,
        on_dead: Callable[[str], None],
    ) -> None:
        self._t = transport
        self.interval = interval
        self.count = count
        self._on_dead = on_dead
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cdlib-keepalive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (the transport is left alone)."""
        self._stop.set()

    def _loop(self) -> None:
        limit = self.interval * self.count
        while not self._stop.wait(self.interval) and self._t.is_active():
            # global_request(wait=True) returns on the answer (success or failure both
            # prove the server alive) or when the transport dies; it has no timeout of
            # its own, so a timer declares the host dead meanwhile.
            timer = threading.Timer(limit, self._dead, args=(limit,))
            timer.daemon = True
            timer.start()
            try:
                self._t.global_request("keepalive@openssh.com", wait=True)
            except Exception:  # any failure here means the transport is gone
                return
            finally:
                timer.cancel()

    def _dead(self, limit: float) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._on_dead(f"no answer to keepalive for {limit:g}s (host hung?)")
        self._t.close()
