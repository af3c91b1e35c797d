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
    tells when a worker is ready and which worker is current. With ``pidfile``
    (HAProxy writes the master's pid there), another process, such as a later
    ``cdlib rollback``, can reload or stop a master it did not start.
    """

    config_path: str
    admin_socket: str
    haproxy: str = "haproxy"
    log_path: str | None = None
    pidfile: str | None = None
    #: The master CLI socket (``-S``); default: ``<config_path>.master.sock``.
    master_socket: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """The master's pid while it runs (from the child, else from the pidfile)."""
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        return self._pid_from_file()

    def _pid_from_file(self) -> int | None:
        if not self.pidfile:
            return None
        try:
            with open(self.pidfile, encoding="ascii") as fh:
                pid = int(fh.read().split()[0])
            # The pid must still be an haproxy run from this config, not a recycled pid.
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.abspath(self.config_path).encode() in argv else None

    @property
    def master_cli(self) -> str:
        """Path of the master CLI socket."""
        return self.master_socket or os.path.abspath(self.config_path) + ".master.sock"

    def _wait_master(self, timeout: float) -> None:
        """Wait until the master's CLI lists a worker: before that it ignores reloads."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = RuntimeClient(self.master_cli, timeout=1.0).raw("show proc")
                if any(line.split()[1:2] == ["worker"] for line in text.splitlines()):
                    return
            except RuntimeAPIError:
                pass
            time.sleep(0.05)
        raise HAProxyProcessError(
            f"haproxy -f {self.config_path}: master CLI {self.master_cli} not ready "
            f"after {timeout}s{self._log_tail()}"
        )

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
                # An absolute path in argv lets _pid_from_file recognise this master.
                [
                    self.haproxy,
                    "-W",
                    "-db",
                    "-S",
                    f"{self.master_cli},mode,600",
                    "-f",
                    os.path.abspath(self.config_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        self.wait_worker(not_pid=None, timeout=timeout)
        self._wait_master(timeout)

    def reload(self, *, timeout: float = 10.0) -> None:
        """Graceful reload: the master starts new workers; old ones finish their sessions."""
        pid = self.pid
        if pid is None:
            raise HAProxyProcessError(f"haproxy for {self.config_path} is not running")
        self._wait_master(timeout)
        old = self.worker_pid()
        os.kill(pid, signal.SIGUSR2)
        self.wait_worker(not_pid=old, timeout=timeout)
        self._wait_master(timeout)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop master and workers (SIGTERM, then SIGKILL after ``timeout``)."""
        if self._proc is None:
            pid = self._pid_from_file()
            if pid is None:
                return
            self._stop_foreign(pid, timeout)
        elif self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._proc = None
        for path in (self.admin_socket, self.master_cli):
            if path.startswith("/") and os.path.exists(path):
                os.unlink(path)

    def _stop_foreign(self, pid: int, timeout: float) -> None:
        """Stop a master another process started: SIGTERM, bounded wait, then SIGKILL."""
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._pid_from_file() == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._pid_from_file() == pid:
            os.kill(pid, signal.SIGKILL)

    def reload_command(self) -> str:
        """A shell command that reloads this process gracefully (for reload_if_changed)."""
        if self.pid is None:
            raise HAProxyProcessError(f"haproxy for {self.config_path} is not running")
        return f"kill -USR2 {self.pid}"


__all__ = ["HAProxyProcess", "HAProxyProcessError"]
