"""The local default router: an HAProxy on this machine, set up in one directory.

Everything lives in ``workdir``: the rendered config, the admin socket, the
server-state file and the release tags. Starting again from the same directory
comes back with the same servers, weights and releases.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from cdlib.traffic.base import DEFAULT_PREVIEW_HEADER
from cdlib.traffic.haproxy import HAProxyPersistence, HAProxyRouter
from cdlib.traffic.haproxy_config import HAProxySite, render_config
from cdlib.traffic.haproxy_process import HAProxyProcess
from cdlib.traffic.haproxy_runtime import RuntimeClient


class LocalHAProxy:
    """Run HAProxy locally in master-worker mode and hand out a router for it.

    ``bind`` is ``address:port`` for user traffic (keep it on loopback for
    tests and demos). ``preview_header`` and ``sticky_cookie`` / ``sticky_header`` go
    into the rendered config (:class:`~cdlib.traffic.haproxy_config.HAProxySite`); a
    config from an earlier run is kept, so changing them needs ``process.reload()``
    after the router re-rendered it. Use as a context manager, or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        bind: str,
        groups: Iterable[str] = ("blue", "green"),
        check_inter_ms: int = 1000,
        check_rise: int = 2,
        check_fall: int = 2,
        haproxy: str = "haproxy",
        preview_header: str | None = DEFAULT_PREVIEW_HEADER,
        sticky_cookie: str | None = None,
        sticky_header: str | None = None,
    ) -> None:
        self.workdir = Path(workdir).absolute()
        self.site = HAProxySite(
            bind=bind,
            admin_socket=str(self.workdir / "admin.sock"),
            groups=tuple(groups),
            state_file=str(self.workdir / "servers.state"),
            pidfile=str(self.workdir / "haproxy.pid"),
            check_inter_ms=check_inter_ms,
            check_rise=check_rise,
            check_fall=check_fall,
            route_map_dir=str(self.workdir),
            preview_header=preview_header,
            sticky_cookie=sticky_cookie,
            sticky_header=sticky_header,
        )
        self.config_path = self.workdir / "haproxy.cfg"
        self.process = HAProxyProcess(
            str(self.config_path),
            self.site.admin_socket,
            haproxy=haproxy,
            log_path=str(self.workdir / "haproxy.log"),
            pidfile=self.site.pidfile,
            master_socket=str(self.workdir / "master.sock"),
        )
        self.router = HAProxyRouter(
            RuntimeClient(self.site.admin_socket),
            groups=self.site.groups,
            backend=self.site.backend,
            persistence=HAProxyPersistence(
                self.site, str(self.config_path), str(self.workdir / "releases.json")
            ),
            check_inter_ms=check_inter_ms,
            check_rise=check_rise,
            check_fall=check_fall,
        )

    def start(self) -> HAProxyRouter:
        """Render the config (first time only) and start HAProxy; returns the router."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        route_map = Path(self.site.route_map or "")
        if self.site.route_map and not route_map.exists():
            # The config names it; empty means the weighted backend until a switch.
            route_map.write_text("")
        if not self.config_path.exists():
            # A config from an earlier run holds its servers; keep it.
            self.config_path.write_text(render_config(self.site))
        self.process.start()
        return self.router

    def running(self) -> bool:
        """Whether a worker answers on the admin socket (started here or elsewhere)."""
        return self.process.worker_pid() is not None

    def stop(self) -> None:
        """Stop HAProxy, also one an earlier process started (the files stay)."""
        self.process.stop()

    def __enter__(self) -> HAProxyRouter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["LocalHAProxy"]
