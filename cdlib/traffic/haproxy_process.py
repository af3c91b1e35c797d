"""Run HAProxy locally in master-worker mode: start, graceful reload, stop.

Used for the local default router and by the tests. On servers HAProxy runs
under systemd and ``systemctl reload haproxy`` does the same graceful reload.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

from cdlib.traffic.base import TrafficError
from cdlib.traffic.haproxy_runtime import RuntimeAPIError, RuntimeClient


class HAProxyProcessError(TrafficError):
    """HAProxy did not start, reload or stop as asked."""


@dataclass
class HAProxyProcess:
    """One HAProxy master process with its workers, started from ``config_path``.

    ``admin_socket`` must be the runtime API address the config declares; it
    tells when a worker is ready and which worker is current.
    """

    config_path: str
    admin_socket: str
    haproxy: str = "haproxy"
    log_path: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """The master's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def worker_pid(self) -> str | None:
        """Pid of the worker answering on the admin socket (``None`` when none answers)."""
        try:
            return RuntimeClient(self.admin_socket, timeout=1.0).show_info().get("Pid")
        except RuntimeAPIError:
            return None

    def wait_worker(self, *, not_pid: str | None, timeout: float = 10.0) -> str:
        """Wait until a worker other than ``not_pid`` answers; return its pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise HAProxyProcessError(
                    f"haproxy -f {self.config_path} exited with {self._proc.returncode}"
                    f"{self._log_tail()}"
                )
            pid = self.worker_pid()
            if pid is not None and pid != not_pid:
                return pid
            time.sleep(0.05)
        raise HAProxyProcessError(
            f"haproxy -f {self.config_path}: no new worker on {self.admin_socket} "
            f"after {timeout}s{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return "\n" + "".join(fh.readlines()[-10:])

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the master (``-W``) and wait until the worker answers on the admin socket."""
        if self.pid is not None:
            raise HAProxyProcessError(f"haproxy for {self.config_path} already runs")
        log = open(self.log_path or os.devnull, "ab")  # noqa: SIM115 - handed to Popen
        try:
            self._proc = subprocess.Popen(
                [self.haproxy, "-W", "-db", "-f", self.config_path],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        self.wait_worker(not_pid=None, timeout=timeout)

    def reload(self, *, timeout: float = 10.0) -> None:
        """Graceful reload: the master starts new workers; old ones finish their sessions."""
        if self._proc is None or self.pid is None:
            raise HAProxyProcessError(f"haproxy for {self.config_path} is not running")
        old = self.worker_pid()
        self._proc.send_signal(signal.SIGUSR2)
        self.wait_worker(not_pid=old, timeout=timeout)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop master and workers (SIGTERM, then SIGKILL after ``timeout``)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._proc = None
        if self.admin_socket.startswith("/") and os.path.exists(self.admin_socket):
            os.unlink(self.admin_socket)

    def reload_command(self) -> str:
        """A shell command that reloads this process gracefully (for reload_if_changed)."""
        if self.pid is None:
            raise HAProxyProcessError(f"haproxy for {self.config_path} is not running")
        return f"kill -USR2 {self.pid}"


__all__ = ["HAProxyProcess", "HAProxyProcessError"]
