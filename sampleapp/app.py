#!/usr/bin/env python3
"""cdlib sample application: a tiny stdlib-only HTTP service used by tests and demos.

Endpoints:
  GET /health   200 ``{"status": "ok", "version": ...}`` (503 when failing health)
  GET /version  the version as plain text
  GET /         JSON with version, color, hostname, pid and the current flags

Configured from the environment:
  APP_PORT          port to listen on (default 8080)
  APP_BIND          address to bind (default 127.0.0.1)
  APP_VERSION       version string; falls back to the VERSION file next to this script
  APP_COLOR         color / group name reported by ``/`` (e.g. blue, green, canary)
  APP_FAIL_MODE     "" | health (health is 503) | 5xx (every request 500) |
                    errors (/health passes, every other request 500: a lying health check) |
                    slow (each request waits APP_SLOW_MS) | crash (exit 3 at start)
  APP_SLOW_MS       latency added in slow mode (default 500)
  APP_START_DELAY   seconds to wait before listening (default 0)
  APP_FLAGS_FILE    optional JSON file of feature flags, re-read when it changes
  APP_FLAGS_PROVIDER  "flagd": read APP_FLAGS_FILE (flagd's format) through OpenFeature
                    with openfeature-provider-flagd in file mode; flag ``new-greeting``
                    (boolean) picks the greeting of ``/`` (``?user=`` is the targeting key)
  APP_FLAGS_POLL_MS how often the flagd provider checks the file (default 500)

Logs one line per request to stdout. On SIGTERM it stops accepting and lets in-flight
requests finish before exiting 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

FAIL_MODES = ("", "health", "5xx", "errors", "slow", "crash")


class Config:
    """Settings read once from the environment at start."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = int(env.get("APP_PORT", "8080"))
        self.bind = env.get("APP_BIND", "127.0.0.1")
        self.version = env.get("APP_VERSION") or _version_file()
        self.color = env.get("APP_COLOR", "")
        self.fail_mode = env.get("APP_FAIL_MODE", "")
        if self.fail_mode not in FAIL_MODES:
            allowed = ", ".join(map(repr, FAIL_MODES))
            raise ValueError(f"APP_FAIL_MODE={self.fail_mode!r}: expected one of {allowed}")
        self.slow_ms = int(env.get("APP_SLOW_MS", "500"))
        self.start_delay = float(env.get("APP_START_DELAY", "0"))
        self.flags_file = env.get("APP_FLAGS_FILE") or None
        self.flags_provider = env.get("APP_FLAGS_PROVIDER", "")
        if self.flags_provider not in ("", "flagd"):
            raise ValueError(f"APP_FLAGS_PROVIDER={self.flags_provider!r}: expected '' or 'flagd'")
        if self.flags_provider and not self.flags_file:
            raise ValueError("APP_FLAGS_PROVIDER=flagd needs APP_FLAGS_FILE")
        self.flags_poll_ms = int(env.get("APP_FLAGS_POLL_MS", "500"))


def _version_file() -> str:
    try:
        return (Path(__file__).resolve().parent / "VERSION").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


class Flags:
    """Feature flags from APP_FLAGS_FILE (a JSON object), reloaded when the file changes."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def current(self) -> dict[str, Any]:
        """The flags as of now; {} when unset, missing or unreadable (the last good copy)."""
        if not self.path:
            return {}
        with self._lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                if stamp != self._stamp:
                    data = json.loads(Path(self.path).read_text())
                    if isinstance(data, dict):
                        self._data = data
                    self._stamp = stamp
            except (OSError, ValueError):
                pass  # keep serving the last good flags
            return dict(self._data)


class Greeting:
    """The ``/`` greeting, chosen by flag ``new-greeting`` through the OpenFeature API.

    Uses only OpenFeature and its flagd provider in file mode: the provider polls the
    file, keeps the last good flags when a new file is bad, and reports reasons.
    """

    OLD = "Hello"
    NEW = "Hello from the new greeting!"

    def __init__(self, cfg: Config) -> None:
        # Imported here so the app needs no packages unless this mode is asked for.
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType

        provider = FlagdProvider(
            resolver_type=ResolverType.FILE,
            offline_flag_source_path=cfg.flags_file,
            deadline_ms=cfg.flags_poll_ms,
        )
        try:
            api.set_provider_and_wait(provider)
        except Exception as exc:  # e.g. no file yet: the provider keeps polling for it
            print(f"sampleapp: flags not ready yet: {exc}", file=sys.stderr, flush=True)
        self._client = api.get_client("sampleapp")

    def current(self, user: str | None) -> dict[str, Any]:
        """The greeting and the flag's evaluation details."""
        from openfeature.evaluation_context import EvaluationContext

        ctx = EvaluationContext(targeting_key=user) if user else None
        d = self._client.get_boolean_details("new-greeting", False, ctx)
        return {
            "greeting": self.NEW if d.value else self.OLD,
            "greeting_flag": {
                "value": d.value,
                "variant": d.variant,
                "reason": str(d.reason) if d.reason else None,
                "errorCode": str(d.error_code) if d.error_code else None,
            },
        }


def make_handler(
    cfg: Config, flags: Flags, greeting: Greeting | None = None
) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``cfg`` and ``flags``."""
    hostname = socket.gethostname()

    class Handler(BaseHTTPRequestHandler):
        server_version = "cdlib-sampleapp"
        # HTTP/1.0 (one request per connection) so a drain never waits on idle keep-alives;
        # the socket timeout bounds a client that connects and sends nothing.
        timeout = 10

        def do_GET(self) -> None:
            if cfg.fail_mode == "slow":
                time.sleep(cfg.slow_ms / 1000)
            if cfg.fail_mode == "5xx":
                return self._send(500, "text/plain", "internal error (APP_FAIL_MODE=5xx)\n")
            path, _, query = self.path.partition("?")
            if cfg.fail_mode == "errors" and path != "/health":
                return self._send(500, "text/plain", "internal error (APP_FAIL_MODE=errors)\n")
            if path == "/health":
                if cfg.fail_mode == "health":
                    body = {"status": "failing", "version": cfg.version}
                    return self._send(503, "application/json", json.dumps(body) + "\n")
                body = {"status": "ok", "version": cfg.version}
                return self._send(200, "application/json", json.dumps(body) + "\n")
            if path == "/version":
                return self._send(200, "text/plain", cfg.version + "\n")
            if path == "/":
                body = {
                    "version": cfg.version,
                    "color": cfg.color,
                    "hostname": hostname,
                    "pid": os.getpid(),
                    "flags": flags.current(),
                }
                if greeting is not None:
                    user = parse_qs(query).get("user", [None])[0]
                    body.update(greeting.current(user))
                return self._send(200, "application/json", json.dumps(body) + "\n")
            return self._send(404, "text/plain", "not found\n")

        def _send(self, code: int, ctype: str, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-App-Version", cfg.version)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # One line per request on stdout (supervisors capture it as the app log).
            line = f"{self.address_string()} {cfg.version} {format % args}"
            print(line, flush=True)

    return Handler


class _Server(ThreadingHTTPServer):
    # Non-daemon threads so shutdown waits for in-flight requests.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True


def _wait(event: threading.Event, seconds: float | None) -> bool:
    """Wait for ``event`` (at most ``seconds``); True if it was set.

    Short slices, because a signal the kernel hands to another thread only runs its Python
    handler once the main thread returns to the interpreter; a long block would miss it.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    while not event.wait(0.1):
        if deadline is not None and time.monotonic() >= deadline:
            return False
    return True


def main() -> int:
    """Run the app until SIGTERM/SIGINT; returns the exit code."""
    try:
        cfg = Config(dict(os.environ))
    except ValueError as exc:
        print(f"sampleapp: bad configuration: {exc}", file=sys.stderr, flush=True)
        return 2
    if cfg.fail_mode == "crash":
        print("sampleapp: crashing at start (APP_FAIL_MODE=crash)", file=sys.stderr, flush=True)
        return 3
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if cfg.start_delay > 0 and _wait(stop, cfg.start_delay):
        return 0
    try:
        greeting = Greeting(cfg) if cfg.flags_provider == "flagd" else None
    except ImportError as exc:
        print(
            f"sampleapp: APP_FLAGS_PROVIDER=flagd needs openfeature-provider-flagd: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return 2
    try:
        handler = make_handler(cfg, Flags(cfg.flags_file), greeting)
        server = _Server((cfg.bind, cfg.port), handler)
    except OSError as exc:
        print(f"sampleapp: cannot listen on {cfg.bind}:{cfg.port}: {exc}", file=sys.stderr)
        return 1
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    # Only the main thread may take SIGTERM/SIGINT: delivered to a request thread, the signal
    # can cut its socket read short and the request is dropped instead of drained. Threads
    # inherit the mask, so block, start the server thread, then unblock here.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    print(
        f"sampleapp {cfg.version} listening on {cfg.bind}:{cfg.port} color={cfg.color or '-'}"
        f" fail_mode={cfg.fail_mode or '-'}",
        flush=True,
    )
    _wait(stop, None)
    server.shutdown()  # stop accepting; server_close below joins in-flight request threads
    thread.join()
    server.server_close()
    print("sampleapp stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
