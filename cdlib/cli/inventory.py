"""``cdlib inventory``: show a resolved inventory like ``ansible-inventory`` does.

Examples::

    cdlib inventory -i inventories/prod --list
    cdlib inventory -i hosts.ini -i extra.yml --graph
    cdlib inventory -i hosts.ini --host web01 -e env=staging
    cdlib inventory -i hosts.ini --hosts 'web:&prod:!canary' --limit 'web[0:4]'
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cdlib.errors import EXIT_BAD_INPUT, EXIT_OK
from cdlib.inventory.export import graph, list_inventory, public_vars, to_json
from cdlib.inventory.extra_vars import parse_extra_vars
from cdlib.inventory.loader import load_inventory
from cdlib.inventory.model import InventoryError
from cdlib.vault.envelope import VaultError
from cdlib.vault.options import add_vault_arguments, keyring_from_args


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inventory`` sub-command to an argparse ``subparsers`` object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inventory",
        help="show the resolved inventory (like ansible-inventory)",
        description="Show hosts, groups and variables as cdlib resolves them. Secret "
        "values (passwords, tokens, private keys) are printed as ********.",
    )
    parser.add_argument(
        "-i", "--inventory", action="append", required=True, metavar="SRC",
        help="inventory file, directory or 'host1,host2,' list (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "-e", "--extra-vars", action="append", default=[], metavar="VARS",
        help="extra vars: key=value, YAML/JSON, or @file (repeatable, highest precedence)",
    )  # fmt: skip
    parser.add_argument(
        "--playbook-dir", metavar="DIR",
        help="also apply group_vars/ and host_vars/ from this playbook directory",
    )  # fmt: skip
    parser.add_argument(
        "-l", "--limit", metavar="PATTERN", help="restrict --list and --hosts to this pattern"
    )
    parser.add_argument(
        "--show-secrets", action="store_true",
        help="print secret values (vault, SSM, Secrets Manager, *password*) in clear",
    )  # fmt: skip
    add_vault_arguments(parser)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--list", action="store_true", help="print all groups and host vars as JSON"
    )
    action.add_argument(
        "--graph", nargs="?", const="all", metavar="GROUP", help="print the group tree"
    )
    action.add_argument("--host", metavar="NAME", help="print one host's variables as JSON")
    action.add_argument(
        "--hosts", metavar="PATTERN", help="print the hosts a pattern selects, one per line"
    )
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    """Run ``cdlib inventory`` with parsed ``args``; return the exit status.

    0 on success; 4 (bad input, as for ``cdlib run``) when an inventory cannot be read or
    a pattern matches no host, with the reason on stderr.
    """
    try:
        keyring = keyring_from_args(args)
        inv = load_inventory(
            args.inventory,
            parse_extra_vars(args.extra_vars, keyring),
            playbook_dir=args.playbook_dir,
            vault=keyring,
        )
        if args.list:
            print(to_json(list_inventory(inv, args.limit, args.show_secrets)))
        elif args.graph is not None:
            print(graph(inv, args.graph))
        elif args.host is not None:
            hosts = inv.select(args.host)
            if len(hosts) != 1:
                raise InventoryError(
                    f"--host needs the name of one host; {args.host!r} matches {len(hosts)}"
                )
            print(to_json(public_vars(hosts[0].vars, args.show_secrets)))
        else:
            for host in inv.select_or_error(args.hosts, args.limit):
                print(host.name)
    except (InventoryError, VaultError) as exc:
        print(f"cdlib inventory: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` for ``cdlib inventory`` alone (for tests and ``python -m``)."""
    parser = argparse.ArgumentParser(prog="cdlib")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return main(parser.parse_args(["inventory", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(run())
