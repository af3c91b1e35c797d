"""The vault options shared by ``cdlib run``, ``cdlib inventory`` and ``cdlib vault``."""

from __future__ import annotations

import argparse

from cdlib.vault.keyring import ENV_PASSWORD_FILE, Keyring, Prompt, build_keyring


def add_vault_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--vault-password-file``, ``--vault-id`` and ``--ask-vault-pass``."""
    group = parser.add_argument_group(
        "vault", f"passwords for Ansible Vault files and values (also: {ENV_PASSWORD_FILE})"
    )
    group.add_argument(
        "--vault-password-file",
        "--vault-pass-file",
        action="append",
        default=[],
        metavar="FILE",
        help="vault password file, or an executable that prints the password (repeatable)",
    )
    group.add_argument(
        "--vault-id",
        action="append",
        default=[],
        metavar="LABEL@SOURCE",
        help="a vault id and its password source: a file, an executable or 'prompt' (repeatable)",
    )
    group.add_argument(
        "-J", "--ask-vault-pass", "--ask-vault-password", action="store_true",
        help="ask for the vault password",
    )  # fmt: skip


def keyring_from_args(args: argparse.Namespace, prompt: Prompt | None = None) -> Keyring:
    """The :class:`Keyring` the parsed vault options name."""
    return build_keyring(
        getattr(args, "vault_password_file", []),
        getattr(args, "vault_id", []),
        getattr(args, "ask_vault_pass", False),
        prompt,
    )
