"""``cdlib exec PATTERN -i INV -- COMMAND``: one shell command on the matching hosts.

The ad-hoc mode of ``ansible PATTERN -m shell -a COMMAND``: the words after ``--`` are
joined with spaces into one shell command line, which each host runs with ``sh -c``
(so the operator's pipes, globs and variables work there, as with ``-m shell``). Each
host's output is shown under its result line, then the recap; a non-zero exit fails
that host (exit 2), an unreachable host exits 3. ``--check`` runs nothing and reports
each host as skipped.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cdlib.engine.errors import CdlibError, PlaybookErrors
from cdlib.engine.results import EXIT_BAD_INPUT, EXIT_USAGE
from cdlib.engine.task import HostContext, Plan, Then
from cdlib.tasks.command import Command

HELP = "run one shell command on the hosts matching a pattern (ad-hoc)"


class _AdHoc(Command):
    """The ad-hoc command: shows its whole output; check mode runs nothing."""

    def plan(self, ctx: HostContext) -> Plan:
        """Skip in check mode (a command's effect cannot be predicted); else run."""
        if ctx.check:
            return Plan(ok_msg="check mode: the command was not run", then=Then.SKIP)
        return super().plan(ctx)

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Run it; the result's message is its whole output."""
        res = self._execute(ctx)
        return (res.stdout + res.stderr).rstrip("\n") or f"exit {res.exit_code}"


def add_parser(sub: Any) -> None:
    """Register ``exec`` on the top-level subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "exec",
        help=HELP,
        usage="cdlib exec PATTERN [-i SRC] [options] -- COMMAND [WORD ...]",
        description=HELP + ". The words after -- form one shell command line (like "
        "ansible -m shell -a). Exit codes: 0 every host ok, 2 the command failed on a "
        "host, 3 a host unreachable, 4 bad input, 5 bad usage.",
    )
    p.add_argument("pattern", help="inventory host pattern ('web', 'web:&prod', 'all')")
    p.add_argument(
        "-i", "--inventory", action="append", default=[], metavar="SRC", help="inventory source"
    )
    p.add_argument("-l", "--limit", metavar="PATTERN", help="further restrict the hosts")
    p.add_argument("-C", "--check", action="store_true", help="run nothing; report skipped")
    p.add_argument("-f", "--forks", type=int, default=10, help="hosts at once (default 10)")
    p.add_argument("-u", "--user", help="SSH login user when the inventory names none")
    p.add_argument(
        "--host-key-policy",
        choices=["strict", "accept-new", "off"],
        default="strict",
        help="SSH host key checking (default strict)",
    )
    p.add_argument("--become", action="store_true", help="run the command through sudo")
    p.set_defaults(func=main, takes_rest=True)


def main(args: argparse.Namespace) -> int:
    """Run the command; print each host's output and the recap; return the exit code."""
    from cdlib.connections.factory import ConnectionOptions
    from cdlib.engine.console import ConsoleSink
    from cdlib.engine.play import Play
    from cdlib.engine.runner import run

    words: list[str] = args.rest
    if not words or not " ".join(words).strip():
        print("cdlib exec: give the command after --", file=sys.stderr)
        return EXIT_USAGE
    if args.forks < 1:
        print("cdlib exec: --forks must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    line = " ".join(words)
    try:
        play = Play(f"exec on {args.pattern}", hosts=args.pattern, become=args.become or None)
        play.task(_AdHoc(cmd=line, name=line[:60]))
        result = run(
            play,
            args.inventory or None,
            check=args.check,
            limit=args.limit,
            forks=args.forks,
            sinks=[ConsoleSink(sys.stdout, verbose=True)],
            connection_options=ConnectionOptions(
                host_key_policy=args.host_key_policy, user=args.user
            ),
        )
    except PlaybookErrors as exc:
        for e in exc.errors:
            print(f"ERROR: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CdlibError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    return result.exit_code
