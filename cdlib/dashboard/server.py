"""The dashboard's HTTP server: the standard library's threading server, kept small.

Routes (everything else is 404; methods other than GET and POST are 405):

- ``GET /``: the page; ``GET /static/...``: its script and style (packaged with cdlib);
- ``GET /api/state``: the snapshot as JSON, with the rendered live part (``html``) and
  the dashboard log; ``GET /api/apps/APP``: one app's part (404 for an unknown app);
- ``GET /apps/APP/releases/ID``: the release's report (:mod:`cdlib.report`), or 404;
- ``POST /api/login``, ``POST /api/apps/APP/promote`` and ``.../abort``: need the
  access token (header ``X-Cdlib-Token`` or form field ``token``), compared with
  :func:`hmac.compare_digest`; without it, 403 and a line in the log. No GET changes
  anything.

Every answer carries a content security policy that lets the page load only its own
script and style, and forbids framing.
"""

from __future__ import annotations

import collections
import hmac
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cdlib.dashboard.model import Sources, snapshot
from cdlib.dashboard.page import error_page, live_html, page
from cdlib.errors import CdlibError
from cdlib.release import gates
from cdlib.release.history import History
from cdlib.release.state import app_name_ok
from cdlib.secret import Secret
from cdlib.state import StateError

__all__ = ["Dashboard", "Token", "actor_name"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: The report page styles itself inline (it is one self-contained file).
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_MAX_BODY = 4096
_NAME = re.compile(r"[^A-Za-z0-9._@+-]")
_ACTION = re.compile(r"^/api/apps/([^/]+)/(promote|abort)$")
_APP = re.compile(r"^/api/apps/([^/]+)$")
_REPORT = re.compile(r"^/apps/([^/]+)/releases/([^/]+)$")


@dataclass(frozen=True)
class Token:
    """An access token and its label (who holds it, for the history when no name is given)."""

    secret: Secret
    label: str = "token"

    def matches(self, given: str) -> bool:
        """Constant-time comparison with ``given``."""
        return hmac.compare_digest(self.secret.reveal().encode(), given.encode())


def actor_name(name: str, token: Token) -> str:
    """``dashboard:NAME`` (the name given at sign-in, cleaned), else ``dashboard:LABEL``."""
    clean = _NAME.sub("", name)[:64]
    return f"dashboard:{clean or token.label}"


class Dashboard:
    """The dashboard server. ``start()`` serves in a thread; ``stop()`` ends it.

    Args:
        sources: what to read (state store, flag stores).
        host: the address to listen on (see :func:`cdlib.dashboard.check_bind`).
        port: the port (0: a free one; see :attr:`url`).
        tokens: access tokens that may act (promote, abort); none: read-only.
        interval: seconds between the page's refreshes (and how long a snapshot is reused).
        log: where log lines go besides the page (default: stderr).
    """

    def __init__(
        self,
        sources: Sources,
        *,
        host: str = "127.0.0.1",
        port: int = 8470,
        tokens: tuple[Token, ...] = (),
        interval: float = 2.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.sources = sources
        self.tokens = tokens
        self.interval = interval
        self.host = host
        self._emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
        self._snap: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"dash": self})
        server = _Server6 if ":" in host else _Server
        self.server: ThreadingHTTPServer = server((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def can_act(self) -> bool:
        """Whether promote and abort are offered (an access token is set)."""
        return bool(self.tokens)

    def start(self) -> Dashboard:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (waits for the serving loop to end)."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server.server_close()

    def log(self, level: str, message: str) -> None:
        """Add a line to the page's log panel and to stderr (control characters shown
        escaped, so a request cannot write to the terminal)."""
        clean = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.events.append({"time": time.time(), "level": level, "message": clean})
        self._emit(f"cdlib dashboard: {level}: {clean}")

    def snapshot(self) -> dict[str, Any]:
        """The current snapshot, reused for half an interval (many viewers, one read)."""
        with self._lock:
            now = time.monotonic()
            if self._snap is None or now - self._snap[0] >= self.interval / 2:
                self._snap = (now, snapshot(self.sources))
            return self._snap[1]

    def forget(self) -> None:
        """Drop the cached snapshot (after an action, the next read is fresh)."""
        with self._lock:
            self._snap = None

    def token_for(self, given: str) -> Token | None:
        """The token ``given`` matches, if any (every token is compared)."""
        found = None
        for t in self.tokens:
            if t.matches(given) and found is None:
                found = t
        return found


class _Server(ThreadingHTTPServer):
    # Request threads never keep the process alive: stopping does not wait for a
    # browser's idle keep-alive connection.
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    dash: Dashboard
    server_version = "cdlib-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    #: Seconds a connection may stay silent (a slow or idle client frees its thread).
    timeout = 30

    # -- plumbing ---------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        return  # requests are not logged one by one; refusals and actions are

    def _send(self, status: int, body: bytes, ctype: str, csp: str = CSP) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _html(self, status: int, text: str, csp: str = CSP) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8", csp)

    def _fail(self, status: int, message: str, *, api: bool) -> None:
        if api:
            self._json(status, {"error": message, "status": status})
        else:
            self._html(status, error_page(status, message))

    def _host_ok(self) -> bool:
        # A page on another site whose name resolves to 127.0.0.1 (DNS rebinding) sends
        # its own name as Host: only the names of this server are answered.
        d = self.dash
        if d.host not in ("127.0.0.1", "::1", "localhost"):
            return True
        host = (self.headers.get("Host") or "").lower()
        names = {"127.0.0.1", "localhost", "[::1]"}
        return host in {f"{n}:{d.port}" for n in names}

    # -- GET --------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        api = path.startswith("/api/")
        if not self._host_ok():
            self.dash.log("refused", f"GET {path}: unknown Host {self.headers.get('Host')!r}")
            self._fail(403, "unknown Host header", api=api)
            return
        try:
            self._get(path, api)
        except CdlibError as exc:
            self._fail(500, f"cannot read the state: {exc}", api=api)

    def _get(self, path: str, api: bool) -> None:
        d = self.dash
        if path == "/":
            snap = d.snapshot()
            self._html(200, page(snap, can_act=d.can_act, interval=d.interval, log=d.events))
        elif path.startswith("/static/") and path[8:] in _STATIC:
            body = resources.files("cdlib.dashboard").joinpath("static", path[8:]).read_bytes()
            self._send(200, body, _STATIC[path[8:]] + "; charset=utf-8")
        elif path == "/api/state":
            snap = d.snapshot()
            html = live_html(snap, can_act=d.can_act, log=d.events)
            self._json(200, {**snap, "can_act": d.can_act, "log": list(d.events), "html": html})
        elif m := _APP.match(path):
            app = unquote(m.group(1))
            found = [a for a in d.snapshot()["apps"] if a["app"] == app]
            if not found:
                self._fail(404, f"no app {app!r} in {d.sources.store.location}", api=True)
            else:
                self._json(200, found[0])
        elif m := _REPORT.match(path):
            from cdlib.report import ReportError, release_report

            app, rid = unquote(m.group(1)), unquote(m.group(2))
            try:
                html = release_report(app, rid, state_dir=d.sources.store)
            except ReportError as exc:
                self._fail(404, str(exc), api=False)
                return
            except StateError:
                # A name the store cannot hold (a stray character) names no release.
                self._fail(404, f"app {app!r} has no release {rid!r}", api=False)
                return
            self._html(200, html, REPORT_CSP)
        else:
            self._fail(404, f"no page {path!r}", api=api)

    # -- POST -------------------------------------------------------------
    def do_POST(self) -> None:
        try:
            self._post()
        except CdlibError as exc:
            self.dash.log("error", f"POST {urlsplit(self.path).path}: {exc}")
            self._fail(500, f"cannot change the state: {exc}", api=True)

    def _post(self) -> None:
        d = self.dash
        path = urlsplit(self.path).path
        peer = self.client_address[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._fail(413, "request body missing a length or too large", api=True)
            return
        form = self._form(self.rfile.read(length))
        given = self.headers.get("X-Cdlib-Token") or form.get("token") or ""
        token = d.token_for(given) if given else None
        origin = self.headers.get("Origin")
        host = self.headers.get("Host") or ""
        if not self._host_ok() or (origin and urlsplit(origin).netloc != host):
            d.log("refused", f"POST {path} from {peer}: foreign Origin {origin!r} or Host")
            self._fail(403, "refused: the request comes from another site", api=True)
            return
        if token is None:
            why = "no access token configured" if not d.can_act else "missing or wrong token"
            d.log("refused", f"POST {path} from {peer}: {why}; nothing changed")
            self._fail(403, f"refused: {why}", api=True)
            return
        who = actor_name(self.headers.get("X-Cdlib-Name") or form.get("name") or "", token)
        if path == "/api/login":
            d.log("info", f"{who} signed in from {peer}")
            self._json(200, {"by": who})
            return
        m = _ACTION.match(path)
        if not m:
            self._fail(404, f"no action {path!r}", api=True)
            return
        self._act(unquote(m.group(1)), m.group(2), form.get("release"), who)

    def _form(self, raw: bytes) -> dict[str, str]:
        text = raw.decode("utf-8", "replace")
        if "json" in (self.headers.get("Content-Type") or ""):
            try:
                data = json.loads(text or "{}")
            except json.JSONDecodeError:
                return {}
            return (
                {k: v for k, v in data.items() if isinstance(v, str)}
                if isinstance(data, dict)
                else {}
            )
        return {k: v[0] for k, v in parse_qs(text).items() if v}

    def _act(self, app: str, action: str, release: str | None, who: str) -> None:
        d = self.dash
        store = d.sources.store
        if not app_name_ok(app) or not store.names(f"{app}/history"):
            self._fail(404, f"no app {app!r} in {store.location}", api=True)
            return
        latest = History(app, state_dir=store).latest()
        if latest is None or not latest.unfinished:
            d.log("info", f"{who}: {action} {app}: no release in progress")
            self._fail(409, f"no release of {app!r} in progress to {action}", api=True)
            return
        if release and release != latest.id:
            # The page showed another release than the one running now: act on none.
            self._fail(409, f"release {release!r} of {app!r} is not the one running", api=True)
            return
        gates.send(app, latest.id, action, by=who, state_dir=store)
        d.forget()
        d.log("action", f"{who}: {action} {app} release {latest.id} ({latest.version})")
        self._json(200, {"message": f"{action} sent to {app} {latest.id}", "by": who})
