"""``cdlib dashboard``: serve the web dashboard of releases, flags and delivery metrics."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cdlib.cli.releases import add_state_option
from cdlib.engine.results import EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``cdlib dashboard``."""
    p = sub.add_parser(
        "dashboard",
        help="serve a web page of apps, releases in progress, history, flags and metrics",
        description="Serve a web dashboard on 127.0.0.1: every app with its live and idle "
        "versions, the release in progress (step, weights, analysis, updating live), history "
        "with each release's report, feature flags and their rollouts, and delivery metrics. "
        "Read-only unless an access token is set (--token-file FILE or "
        "$CDLIB_DASHBOARD_TOKEN; never on the command line): then the page offers promote "
        "and abort, recorded as dashboard:NAME. Stops on Ctrl-C or SIGTERM.",
        # No prefix matching: '--token SECRET' must not pass for '--token-file'.
        allow_abbrev=False,
    )
    add_state_option(p)
    p.add_argument(
        "--bind",
        metavar="ADDRESS",
        help="address to listen on (default 127.0.0.1); an address beyond loopback also "
        "needs an access token, and anyone who reaches it can read the page",
    )
    p.add_argument("--port", type=int, default=8470, help="port (default 8470; 0: any free one)")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="access tokens, one a line ('TOKEN' or 'LABEL TOKEN'; mode 0600)",
    )
    p.add_argument(
        "--flags",
        action="append",
        default=[],
        metavar="SOURCE",
        help="a flag file or ssm:PARAMETER to show (repeatable)",
    )
    p.add_argument("--endpoint-url", help="AWS endpoint for ssm: flag sources (e.g. moto)")
    p.add_argument("--region", help="AWS region for ssm: flag sources")
    p.add_argument(
        "--interval", type=float, default=2.0, help="seconds between page refreshes (default 2)"
    )
    p.add_argument("--history", type=int, default=20, help="releases listed per app (default 20)")
    p.add_argument(
        "--days", type=float, default=30.0, help="days the delivery metrics cover (default 30)"
    )
    p.add_argument(
        "--no-router",
        action="store_true",
        help="do not read routers; live and idle versions come from history",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="",
        metavar="APP",
        help="print what the page shows (or one APP) as JSON once and exit; an unknown APP exits 4",
    )
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Check every setting, then serve (or print ``--json``); bad settings exit 4."""
    from cdlib.dashboard import (
        Dashboard,
        DashboardError,
        Sources,
        check_bind,
        load_tokens,
        serve,
        snapshot,
    )
    from cdlib.flags import FlagsError, FlagStore
    from cdlib.state import open_store

    if not args.interval > 0 or args.history < 1 or not args.days > 0:
        raise DashboardError("--interval, --history and --days must be positive")
    if not 0 <= args.port <= 65535:
        raise DashboardError(f"--port {args.port}: not a port number")
    from cdlib.cli.flags import store_for

    stores: list[FlagStore] = [
        store_for(spec, args.endpoint_url, args.region) for spec in args.flags
    ]
    for store in stores:
        try:
            store.read()
        except FlagsError as exc:
            raise DashboardError(f"--flags {store.name}: {exc}") from None
    sources = Sources(
        open_store(args.state_dir),
        stores,
        history=args.history,
        days=args.days,
        read_router=not args.no_router,
        warn=lambda m: print(f"cdlib dashboard: warning: {m}", file=sys.stderr),
    )
    if args.json is not None:
        snap = snapshot(sources)
        if args.json:
            found = [a for a in snap["apps"] if a["app"] == args.json]
            if not found:
                known = ", ".join(a["app"] for a in snap["apps"]) or "none"
                raise DashboardError(
                    f"no app {args.json!r} in {sources.store.location} (apps: {known})"
                )
            print(json.dumps(found[0], indent=2))
        else:
            print(json.dumps(snap, indent=2))
        return EXIT_OK
    tokens = load_tokens(args.token_file)
    host = args.bind or "127.0.0.1"
    check_bind(host, explicit=args.bind is not None, tokens=tokens)
    try:
        dash = Dashboard(sources, host=host, port=args.port, tokens=tokens, interval=args.interval)
    except OSError as exc:
        raise DashboardError(
            f"cannot listen on {host}:{args.port}: {exc.strerror or exc}"
        ) from None
    mode = f"promote and abort with {len(tokens)} token(s)" if tokens else "read-only"
    print(
        f"cdlib dashboard: serving {dash.url} ({mode}); Ctrl-C stops", file=sys.stderr, flush=True
    )
    serve(dash)
    print("cdlib dashboard: stopped", file=sys.stderr)
    return EXIT_OK
