"""Helpers for the traffic tests: small HTTP apps in threads, free ports."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cdlib.traffic.base import Target
from cdlib.traffic.haproxy import HAProxyRouter
from cdlib.traffic.haproxy_config import HAProxySite
from cdlib.traffic.haproxy_process import HAProxyProcess
from tests.sample_app import run_app


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SampleApp:
    """A running sample-app process (sampleapp/app.py) and the target it serves."""

    version: str
    target: Target


def _drain(proc: subprocess.Popen[str]) -> None:
    """Read the app's request log as it comes: nobody else reads it, and a full pipe
    would block the app's print() and so every request (servers "down" under load)."""
    out = proc.stdout
    if out is None:
        return

    def run() -> None:
        with contextlib.suppress(OSError, ValueError):
            for _line in out:
                pass

    threading.Thread(target=run, daemon=True).start()


@contextlib.contextmanager
def sample_apps(
    spec: dict[str, tuple[str, int]], env: dict[str, str] | None = None
) -> Iterator[dict[str, list[SampleApp]]]:
    """Start sample-app processes: ``{group: (version, count)}``; stopped on exit."""
    with contextlib.ExitStack() as stack:
        out: dict[str, list[SampleApp]] = {}
        for group, (version, count) in spec.items():
            out[group] = []
            for _ in range(count):
                app_env = {"APP_VERSION": version, "APP_COLOR": group, **(env or {})}
                proc, url = stack.enter_context(run_app(app_env))
                _drain(proc)
                out[group].append(SampleApp(version, Target.parse(url.rsplit("/", 1)[1])))
        yield out


@dataclass
class App:
    """A tiny HTTP app in a thread: ``/health`` and ``/`` answering its version."""

    version: str
    healthy: bool = True
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def target(self) -> Target:
        assert self.server is not None
        return Target("127.0.0.1", int(self.server.server_address[1]))

    def start(self) -> App:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/slow/"):
                    # Holds a request open: a session the router must drain.
                    time.sleep(float(self.path.rsplit("/", 1)[1]))
                if self.path == "/health":
                    code, body = (200, b"ok") if app.healthy else (503, b"sick")
                else:
                    with app._lock:
                        app.hits += 1
                    code, body = 200, app.version.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                # Health checks hang up after the status line; that is no error.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class HAProxyEnv:
    """A running HAProxy with its router and the files behind it."""

    process: HAProxyProcess
    router: HAProxyRouter
    site: HAProxySite
    config_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class LoadResult:
    """What a load run saw: successes per body, failures with their reasons."""

    ok: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    #: Requests resent once on a new connection because a reused keep-alive connection
    #: was closed before any byte of the answer (only with ``retry_stale``).
    stale_retries: int = 0

    @property
    def total(self) -> int:
        return sum(self.ok.values()) + len(self.failures)


class Load:
    """Steady HTTP GET load on ``host`` (loopback) from threads, bounded in count and time.

    Half the threads keep one connection alive; the other half open a new
    connection per request. Every non-200 answer or transport error counts as a
    failure, with its reason.
    """

    def __init__(
        self,
        port: int,
        *,
        path: str = "/version",
        threads: int = 4,
        max_requests: int = 6000,
        max_seconds: float = 90.0,
        retry_stale: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.port = port
        self.host = host
        # As browsers, curl and urllib3 do (RFC 9112 9.3.1: an idempotent request may be
        # retried when the connection closed before any response): a GET sent on a
        # *reused* keep-alive connection that the server closed while it was idle is sent
        # once more on a new connection. Counted, never hidden; off by default.
        self.retry_stale = retry_stale
        self.path = path
        self.threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    @property
    def total(self) -> int:
        with self._lock:
            return self.result.total

    def _record(self, body: str | None, failure: str | None) -> bool:
        with self._lock:
            if failure is not None:
                self.result.failures.append(failure)
            else:
                assert body is not None
                self.result.ok[body] += 1
            return self.result.total < self.max_requests

    def _worker(self, keep_alive: bool) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn: http.client.HTTPConnection | None = None
        go_on = True
        while go_on and not self._stop.is_set() and time.monotonic() < deadline:
            body: str | None = None
            failure: str | None = None
            try:
                reused = conn is not None
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                headers = {} if keep_alive else {"Connection": "close"}
                try:
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not (reused and self.retry_stale):
                        raise
                    conn.close()
                    with self._lock:
                        self.result.stale_retries += 1
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                data = resp.read().decode()
                if resp.status != 200:
                    failure = f"HTTP {resp.status}: {data[:80]!r}"
                else:
                    body = data.strip()
                if not keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = None
            go_on = self._record(body, failure)
        if conn is not None:
            conn.close()

    def start(self) -> Load:
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, args=(i % 2 == 0,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` requests in total were made (bounded)."""
        deadline = time.monotonic() + timeout
        while self.total < count:
            if time.monotonic() > deadline or not any(t.is_alive() for t in self._workers):
                raise AssertionError(f"load stalled at {self.total} requests (wanted {count})")
            time.sleep(0.01)

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._workers:
            t.join(15)
        return self.result


#: Dummy credentials and region for moto.
AWS = {
    "region": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


@dataclass
class Aws:
    """boto3 clients talking to the moto server, a VPC, and counted ELBv2 write calls."""

    elbv2: Any
    ec2: Any
    cloudwatch: Any
    vpc: str
    subnets: tuple[str, str]
    writes: Counter[str]


def instance_blue_green(
    aws: Aws, tmp_path: Path, prefix: str, per_group: int = 1
) -> tuple[Any, dict[str, list[str]], Path]:
    """An ALB with instance target groups ``blue`` (live) and ``green`` on port 8080.

    Starts ``per_group`` moto instances for each group and writes an inventory of them
    (hosts ``b0``.. and ``g0``.. with host var ``instance_id``). Returns the load
    balancer's handles, the instance ids per group and the inventory path.
    """
    import uuid

    import yaml

    from cdlib.traffic.elbv2_provision import (
        LoadBalancerSpec,
        TargetGroupSpec,
        ensure_load_balancer,
    )

    name = f"{prefix}-" + uuid.uuid4().hex[:6]
    handles = ensure_load_balancer(
        aws.elbv2,
        LoadBalancerSpec(
            name=name,
            vpc_id=aws.vpc,
            subnets=aws.subnets,
            default_group="blue",
            target_groups=(
                TargetGroupSpec("blue", f"{name}-b", 8080, target_type="instance"),
                TargetGroupSpec("green", f"{name}-g", 8080, target_type="instance"),
            ),
        ),
    )
    started = aws.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=2 * per_group,
        MaxCount=2 * per_group,
        SubnetId=aws.subnets[0],
    )["Instances"]
    ids = [i["InstanceId"] for i in started]
    groups = {"blue": ids[:per_group], "green": ids[per_group:]}
    inv = {
        "all": {
            "children": {
                g: {"hosts": {f"{g[0]}{i}": {"instance_id": iid} for i, iid in enumerate(members)}}
                for g, members in groups.items()
            }
        }
    }
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(inv))
    return handles, groups, path
