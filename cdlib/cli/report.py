"""``cdlib report APP [RELEASE_ID] -o report.html``: one release as a self-contained page."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cdlib.engine.results import EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``cdlib report``."""
    p = sub.add_parser(
        "report",
        help="write one release as a self-contained HTML page (steps, weights, metrics)",
        description="Write the report of a release of APP (RELEASE_ID, default the latest) "
        "as one HTML file that opens without network access: who, what and when, each step "
        "and how long it took, traffic weights and each analysed metric against its "
        "threshold over time, gates, and the outcome with its reason.",
    )
    p.add_argument("app", help="application name, as given to the release")
    p.add_argument("release_id", nargs="?", help="release id (default: the latest release)")
    p.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    p.add_argument(
        "--state-dir",
        help="release state directory (default $CDLIB_STATE_DIR or ~/.local/state/cdlib)",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report; unknown app or release: exit 4 (ReportError)."""
    from cdlib.report import release_report, write_report

    if args.output == "-":
        sys.stdout.write(release_report(args.app, args.release_id, state_dir=args.state_dir))
        return EXIT_OK
    out = write_report(args.app, args.output, args.release_id, state_dir=args.state_dir)
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK
