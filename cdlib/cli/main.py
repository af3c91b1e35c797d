"""Entry point of the ``cdlib`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from cdlib.cli.parser import Parser
from cdlib.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CdlibError

#: Subcommand -> the module that registers it; only the module a command needs is
#: imported, so ``cdlib run`` does not pay for flags or AWS code.
COMMANDS = {
    "run": "cdlib.cli.run",
    "exec": "cdlib.cli.exec",
    "inventory": "cdlib.cli.inventory",
    "flags": "cdlib.cli.flags",
    "status": "cdlib.cli.releases",
    "history": "cdlib.cli.releases",
    "promote": "cdlib.cli.releases",
    "abort": "cdlib.cli.releases",
    "rollback": "cdlib.cli.releases",
    "unlock": "cdlib.cli.releases",
    "vault": "cdlib.cli.vault",
    "report": "cdlib.cli.report",
    "dashboard": "cdlib.cli.dashboard",
}


def build_parser(only: str | None = None) -> Parser:
    """The argument parser: every subcommand, or just ``only`` and its module's siblings."""
    import importlib

    from cdlib._version import __version__

    parser = Parser(
        prog="cdlib",
        description="Continuous delivery in the Ansible style: idempotent tasks, "
        "blue/green and canary releases, feature toggles.",
    )
    parser.add_argument("--version", action="version", version=f"cdlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    modules = [COMMANDS[only]] if only in COMMANDS else list(COMMANDS.values())
    for name in dict.fromkeys(modules):
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cdlib`` with ``argv``; returns the exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in given if not a.startswith("-")), None)
    parser = build_parser(first)
    args, extras = parser.parse_known_args(given)
    if args.command is None:
        parser.print_help()
        return 0
    rest: list[str] = []
    if getattr(args, "takes_rest", False) and "--" in given:
        # ``cdlib exec``: the words after "--" are a command for the hosts, never options
        # here; every other command reads "--" as argparse does (the end of options).
        cut = given.index("--")
        args, extras = parser.parse_known_args(given[:cut])
        rest = given[cut + 1 :]
    args.rest = rest
    if extras:
        sub = _subparser(parser, args.command)
        sub.error(f"unrecognized arguments: {' '.join(extras)}")
    func = args.func
    debug = bool(os.environ.get("CDLIB_DEBUG")) or getattr(args, "verbose", 0) >= 3
    if debug:
        # -vvv: the debug logs of cdlib and its libraries (paramiko's SSH) on stderr.
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    try:
        return int(func(args))
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CdlibError as exc:
        # Every user-facing error maps to its exit code; only bugs are "internal".
        if debug:
            traceback.print_exc()
        print(f"cdlib {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if debug:
            raise
        print(
            f"cdlib: internal error: {type(exc).__name__}: {exc}\n"
            "  (run with -vvv or CDLIB_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    return parser


if __name__ == "__main__":
    sys.exit(main())
