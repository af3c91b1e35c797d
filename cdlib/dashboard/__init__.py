"""``cdlib dashboard``: a web page of every app, its release in progress, history,
delivery metrics and feature flags, served on the loopback interface.

This package sits on top, next to the CLI and the report: it reads the state store
(:mod:`cdlib.state`) through :mod:`cdlib.release` and flag stores through
:mod:`cdlib.flags`; nothing below imports it. It is read-only unless started with an
access token; then the page offers promote and abort, which go through the same gate
signals as ``cdlib promote`` and ``cdlib abort``, recorded as ``dashboard:NAME``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import stat
import threading
from pathlib import Path
from types import FrameType

from cdlib.dashboard.metrics import DeliveryMetrics, delivery_metrics
from cdlib.dashboard.model import Sources, snapshot
from cdlib.dashboard.server import Dashboard, Token, actor_name
from cdlib.errors import EXIT_BAD_INPUT, CdlibError
from cdlib.secret import Secret

__all__ = [
    "Dashboard",
    "DashboardError",
    "DeliveryMetrics",
    "Sources",
    "Token",
    "actor_name",
    "check_bind",
    "delivery_metrics",
    "load_tokens",
    "serve",
    "snapshot",
]

#: Environment variable holding an access token (never a command-line argument).
TOKEN_ENV = "CDLIB_DASHBOARD_TOKEN"
#: Shortest token accepted: a guessable token on a page that can abort releases is none.
MIN_TOKEN = 16


class DashboardError(CdlibError):
    """Bad dashboard settings (bind address, token file, flag source): exit code 4."""

    exit_code = EXIT_BAD_INPUT


def load_tokens(
    token_file: str | Path | None, env: dict[str, str] | None = None
) -> tuple[Token, ...]:
    """Access tokens from ``token_file`` and ``$CDLIB_DASHBOARD_TOKEN``.

    The file holds one token a line, ``TOKEN`` or ``LABEL TOKEN`` (the label is who
    holds it; blank lines and ``#`` comments are skipped); it must not be readable by
    group or others. Each token has at least 16 characters.
    """
    env = dict(os.environ) if env is None else env
    out: list[Token] = []
    if token_file is not None:
        path = Path(token_file)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DashboardError(f"token file {path}: cannot read: {exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise DashboardError(
                f"token file {path}: readable by others (mode {stat.S_IMODE(mode):04o}); "
                f"chmod 600 {path}"
            )
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            label, _, tok = line.rpartition(" ") if " " in line else ("token", "", line)
            out.append(_token(tok.strip(), label.strip() or "token", f"{path}:{n}"))
        if not out:
            raise DashboardError(f"token file {path}: no token in it")
    if env.get(TOKEN_ENV):
        out.append(_token(env[TOKEN_ENV].strip(), "env", f"${TOKEN_ENV}"))
    return tuple(out)


def _token(value: str, label: str, where: str) -> Token:
    if len(value) < MIN_TOKEN:
        raise DashboardError(f"{where}: the token is shorter than {MIN_TOKEN} characters")
    return Token(Secret(value), label)


def check_bind(host: str, *, explicit: bool, tokens: tuple[Token, ...]) -> None:
    """Refuse an address beyond loopback unless it was asked for with ``--bind`` and an
    access token is set; a name other than ``localhost`` is refused (bind an address)."""
    if host == "localhost":
        return
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise DashboardError(
            f"bind address {host!r}: give an IP address (127.0.0.1, ::1, or with --bind "
            "and a token another one)"
        ) from None
    if addr.is_loopback:
        return
    if not explicit or not tokens:
        raise DashboardError(
            f"bind address {host}: not a loopback address; serving beyond this machine "
            f"needs --bind {host} and an access token (--token-file or ${TOKEN_ENV})"
        )


def serve(dash: Dashboard, *, ready: threading.Event | None = None) -> None:
    """Serve until SIGINT or SIGTERM (Ctrl-C), then stop cleanly.

    Must run in the main thread (it installs the signal handlers, and restores the
    previous ones before returning).
    """
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        dash.start()
        if ready is not None:
            ready.set()
        while not stop.wait(0.5):
            pass
    finally:
        dash.stop()
        for s, h in old.items():
            signal.signal(s, h)
