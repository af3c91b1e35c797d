"""``cdlib run PLAYBOOK -i INVENTORY``: run a playbook against an inventory."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdlib.engine.errors import CdlibError
from cdlib.engine.results import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_USAGE
from cdlib.vault.envelope import VaultError
from cdlib.vault.options import add_vault_arguments, keyring_from_args

if TYPE_CHECKING:
    from cdlib.vault.keyring import Keyring

HELP = "run a playbook (a Python file of plays) against an inventory"


def add_parser(sub: Any) -> None:
    """Register ``run`` on the top-level subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help=HELP,
        description=HELP + ". Exit codes: 0 all hosts ok, 2 a host failed, 3 a host "
        "unreachable, 4 bad input (nothing was changed), 5 bad usage, 99 interrupted.",
    )
    p.add_argument("playbook", help="path of the playbook .py file")
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        default=[],
        metavar="SRC",
        help="inventory file, directory or 'host1,host2,' list (repeatable); "
        "default: localhost with the local connection",
    )
    p.add_argument("-C", "--check", action="store_true", help="predict changes without making any")
    p.add_argument("-D", "--diff", action="store_true", help="show content diffs")
    p.add_argument(
        "--force-handlers",
        action="store_true",
        help="run notified handlers on a host even when a later task failed there",
    )
    p.add_argument("-l", "--limit", metavar="PATTERN", help="restrict to hosts matching PATTERN")
    p.add_argument(
        "--state",
        metavar="LOCATION",
        help="where releases keep lock and history: a directory or s3://BUCKET/PREFIX "
        "(default $CDLIB_STATE, else $CDLIB_STATE_DIR or ~/.local/state/cdlib); a "
        "strategy's own state= option wins",
    )
    p.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="key=value pairs, a JSON/YAML mapping, or @file (repeatable)",
    )
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label recorded with every release of the run, e.g. commit=abc123 (repeatable)",
    )
    p.add_argument("-f", "--forks", type=int, default=10, help="hosts run at once (default 10)")
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people, json for JSON Lines events on stdout",
    )
    p.add_argument(
        "--host-key-policy",
        choices=["strict", "accept-new", "off"],
        default="strict",
        help="SSH host key checking (default strict)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="TCP connect, SSH handshake and login (default 10)",
    )
    p.add_argument(
        "--command-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="longest a command may run when its task sets no timeout (default 3600, 0: none)",
    )
    p.add_argument(
        "--keepalive-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="probe each host this often; 3 unanswered probes make it unreachable "
        "(default 15, 0: off)",
    )
    p.add_argument("-u", "--user", help="SSH login user when the inventory names none")
    p.add_argument(
        "-K",
        "--ask-become-pass",
        action="store_true",
        help="prompt for the sudo password (or set CDLIB_BECOME_PASSWORD)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show messages of ok tasks; -vvv also shows SSH debug logs and tracebacks",
    )
    add_selection_options(p)
    p.add_argument(
        "--list-tasks", action="store_true", help="list the tasks that would run; run nothing"
    )
    p.add_argument(
        "--list-hosts", action="store_true", help="list the hosts each play would run on"
    )
    p.add_argument(
        "--syntax-check",
        action="store_true",
        help="load and validate the playbook for every host; run nothing",
    )
    p.add_argument(
        "--step", action="store_true", help="ask before each task: (N)o/(y)es/(c)ontinue"
    )
    p.add_argument(
        "--retry-file",
        type=Path,
        metavar="PATH",
        help="after the run, write the failed and unreachable hosts to PATH "
        "(retry them with --limit @PATH); removed when every host succeeded",
    )
    add_vault_arguments(p)
    p.set_defaults(func=main)


def add_selection_options(p: argparse.ArgumentParser) -> None:
    """``--tags``, ``--skip-tags`` and ``--start-at-task``."""
    p.add_argument(
        "-t",
        "--tags",
        action="append",
        default=[],
        metavar="TAGS",
        help="run only tasks with these tags (comma-separated, repeatable; "
        "special: all, tagged, untagged, always, never)",
    )
    p.add_argument(
        "--skip-tags",
        action="append",
        default=[],
        metavar="TAGS",
        help="skip tasks with these tags (comma-separated, repeatable)",
    )
    p.add_argument(
        "--start-at-task",
        metavar="NAME",
        help="start at the first task with this name (or shell pattern)",
    )


def parse_extra_vars(items: list[str], vault: Keyring | None = None) -> dict[str, Any]:
    """``-e`` values as Ansible reads them: ``k=v k2=v2``, JSON/YAML, or ``@file``."""
    from cdlib.inventory import InventoryError
    from cdlib.inventory.extra_vars import parse_extra_vars as parse

    try:
        return parse(items, vault)
    except InventoryError as exc:
        raise CdlibError(str(exc)) from None


def parse_meta(items: list[str]) -> dict[str, str]:
    """``--meta KEY=VALUE`` items as a mapping; a word without ``=`` is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CdlibError(f"--meta {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def main(args: argparse.Namespace) -> int:
    """Run the playbook; print events; return the exit code."""
    # --state reaches strategies as $CDLIB_STATE for this run only: an embedding process
    # may call main again with other options.
    before = os.environ.get("CDLIB_STATE")
    try:
        return _main(args)
    finally:
        if before is None:
            os.environ.pop("CDLIB_STATE", None)
        else:
            os.environ["CDLIB_STATE"] = before


def _main(args: argparse.Namespace) -> int:
    from cdlib.cli.controls import print_outline, split_tags, step_prompt, write_retry_file
    from cdlib.connections.factory import ConnectionOptions
    from cdlib.engine.console import ConsoleSink
    from cdlib.engine.errors import PlaybookErrors
    from cdlib.engine.events import EventSink, JsonLinesSink
    from cdlib.engine.runner import outline, run

    if args.forks < 1:
        print("cdlib run: --forks must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        keyring = keyring_from_args(args)
    except VaultError as exc:
        _bad_input([str(exc)], args.format)
        return EXIT_BAD_INPUT
    try:
        extra = parse_extra_vars(args.extra_vars, keyring)
        meta = parse_meta(args.meta)
    except CdlibError as exc:
        print(f"cdlib run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.state:
        from cdlib.state import StateError, open_store

        try:
            open_store(args.state)
        except StateError as exc:
            print(f"cdlib run: --state: {exc}", file=sys.stderr)
            return EXIT_USAGE
        # Strategies open their store from $CDLIB_STATE when they name none.
        os.environ["CDLIB_STATE"] = args.state
    tags = split_tags(args.tags) or ["all"]
    skip_tags = split_tags(args.skip_tags)
    if args.list_tasks or args.list_hosts or args.syntax_check:
        try:
            items = outline(
                args.playbook,
                args.inventory or None,
                limit=args.limit,
                extra_vars=extra,
                tags=tags,
                skip_tags=skip_tags,
                start_at_task=args.start_at_task,
                vault=keyring,
            )
        except PlaybookErrors as exc:
            _bad_input([str(e) for e in exc.errors], args.format)
            return EXIT_BAD_INPUT
        except CdlibError as exc:
            _bad_input([str(exc)], args.format)
            return EXIT_BAD_INPUT
        if args.list_tasks or args.list_hosts:
            print_outline(
                items,
                args.playbook,
                tasks=args.list_tasks,
                hosts=args.list_hosts,
                out=sys.stdout,
            )
        else:
            print(f"\nplaybook: {args.playbook}")
        return 0
    become_pw = os.environ.get("CDLIB_BECOME_PASSWORD")
    if args.ask_become_pass and become_pw is None:
        become_pw = getpass.getpass("BECOME password: ")
    sink: EventSink = (
        JsonLinesSink(sys.stdout, diff=args.diff)
        if args.format == "json"
        else ConsoleSink(sys.stdout, diff=args.diff, verbose=args.verbose > 0)
    )
    previous = _announce_interrupts()
    try:
        result = run(
            args.playbook,
            args.inventory or None,
            check=args.check,
            diff=args.diff,
            force_handlers=args.force_handlers,
            limit=args.limit,
            extra_vars=extra,
            metadata=meta,
            forks=args.forks,
            sinks=[sink],
            connection_options=ConnectionOptions(
                host_key_policy=args.host_key_policy,
                connect_timeout=args.connect_timeout,
                command_timeout=args.command_timeout,
                keepalive_interval=args.keepalive_interval,
                become_password=become_pw,
                user=args.user,
            ),
            vault=keyring,
            tags=tags,
            skip_tags=skip_tags,
            start_at_task=args.start_at_task,
            step=step_prompt() if args.step else None,
        )
    except PlaybookErrors as exc:
        _bad_input([str(e) for e in exc.errors], args.format)
        return EXIT_BAD_INPUT
    except CdlibError as exc:
        if exc.exit_code != EXIT_BAD_INPUT:
            raise  # the one format of cdlib.cli.main, with the error's own exit code
        if args.verbose >= 3:
            import traceback

            traceback.print_exception(exc)
        _bad_input([str(exc)], args.format)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.retry_file is not None:
        write_retry_file(args.retry_file, result)
    return result.exit_code


def _announce_interrupts() -> Any:
    """Say on stderr, at the first Ctrl-C, that the running tasks are being waited for."""

    def on_sigint(signum: int, frame: object) -> None:
        print(
            "cdlib run: interrupted: no new task starts; waiting for the tasks running "
            "on hosts to finish (exit 99)",
            file=sys.stderr,
            flush=True,
        )
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, on_sigint)


def _bad_input(messages: list[str], fmt: str) -> None:
    for m in messages:
        print(f"ERROR: {m}", file=sys.stderr)
    print("nothing was changed on any host", file=sys.stderr)
    if fmt == "json":
        print(json.dumps({"event": "error", "errors": messages, "exit_code": EXIT_BAD_INPUT}))
