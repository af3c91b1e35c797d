"""Helpers for tests that use the sample app locally: build a release, run it on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sampleapp" / "app.py"
BUILD = ROOT / "scripts" / "build_sample_app.py"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def build_release(version: str, out: Path, fail_mode: str | None = None) -> Path:
    """Run scripts/build-sample-app and return the tarball's path."""
    argv = [sys.executable, str(BUILD), version, "--out", str(out)]
    if fail_mode:
        argv += ["--fail-mode", fail_mode]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"build-sample-app {version} failed: {res.stderr.strip()}")
    return Path(res.stdout.split()[0])


@dataclass
class Response:
    """Status, body and headers of one HTTP response."""

    status: int
    body: str
    headers: dict[str, str]


def http_get(url: str, timeout: float = 5.0) -> Response:
    """GET ``url``; HTTP errors come back as a Response, connection errors raise OSError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return Response(r.status, r.read().decode(), dict(r.headers.items()))
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read().decode(), dict(e.headers.items()))


def wait_listening(host: str, port: int, proc: subprocess.Popen[str], timeout: float = 15) -> None:
    """Wait until ``host:port`` accepts TCP, failing early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"app not listening on {host}:{port} after {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def run_app(
    env: Mapping[str, str] | None = None, argv: list[str] | None = None, wait: bool = True
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start the sample app on a free 127.0.0.1 port; yields (process, base URL).

    ``argv`` replaces the default command (``python sampleapp/app.py``), e.g. a release's
    ``bin/start``. The process is terminated (SIGTERM, then SIGKILL) on exit.
    """
    port = free_port()
    full = {**os.environ, "APP_PORT": str(port), "APP_BIND": "127.0.0.1", **(env or {})}
    proc = subprocess.Popen(
        argv or [sys.executable, str(APP)],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if wait:
            wait_listening("127.0.0.1", port, proc)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
