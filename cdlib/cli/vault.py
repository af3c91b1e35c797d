"""``cdlib vault``: Ansible Vault files and values, in Ansible's format.

Examples::

    cdlib vault encrypt group_vars/prod/vault.yml --vault-password-file ~/.vault_pass
    cdlib vault view group_vars/prod/vault.yml --vault-id prod@prompt
    cdlib vault edit group_vars/prod/vault.yml
    cdlib vault rekey vault.yml --vault-id old@old.pass --new-vault-id new@new.pass
    cdlib vault encrypt-string 's3cret' --name db_password

Files are written atomically (a temporary file in the same directory, then a rename) and
never in clear on disk, except the output of ``decrypt`` (created 0600). ``edit`` and
``create`` decrypt into a 0600 file in a fresh 0700 directory for ``$EDITOR``, and remove
it afterwards. A wrong password names the file and the vault ids tried, exits 4 and
changes nothing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cdlib.atomicfile import write_atomic
from cdlib.engine.results import EXIT_BAD_INPUT, EXIT_OK
from cdlib.vault.envelope import VaultError, is_encrypted
from cdlib.vault.keyring import Keyring, VaultPassword, parse_vault_id, read_password_source
from cdlib.vault.options import add_vault_arguments, keyring_from_args

HELP = "encrypt, decrypt, view and edit Ansible Vault files and values"


def add_parser(sub: Any) -> None:
    """Register ``vault`` and its actions on the top-level subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "vault", help=HELP, description=HELP + ". Exit codes: 0 ok, 4 bad input or wrong "
        "password (nothing was changed)."
    )  # fmt: skip
    actions = p.add_subparsers(dest="vault_action", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        a: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        add_vault_arguments(a)
        a.set_defaults(func=main)
        return a

    for name, text in (
        ("encrypt", "encrypt files in place (or into --output)"),
        ("decrypt", "decrypt files in place (or into --output; '-' for stdout), 0600"),
        ("view", "print the decrypted content of files"),
        ("edit", "decrypt into $EDITOR and encrypt again"),
        ("create", "create a new encrypted file with $EDITOR"),
        ("rekey", "encrypt files again with a new password"),
    ):
        a = action(name, text)
        a.add_argument("files", nargs="+", metavar="FILE")
        if name in ("encrypt", "decrypt"):
            a.add_argument("--output", metavar="FILE", help="write here instead of in place")
        if name in ("encrypt", "create", "rekey"):
            a.add_argument("--encrypt-vault-id", metavar="LABEL", help="vault id to encrypt with")
        if name == "rekey":
            a.add_argument("--new-vault-password-file", metavar="FILE")
            a.add_argument("--new-vault-id", metavar="LABEL@SOURCE")
    es = action("encrypt-string", "encrypt a value for a YAML file (a '!vault |' block)")
    es.add_argument("values", nargs="*", metavar="STRING", help="values (default: stdin)")
    es.add_argument("-n", "--name", action="append", default=[], help="variable name(s)")
    es.add_argument("--stdin-name", metavar="NAME", help="name for the value read from stdin")
    es.add_argument("--encrypt-vault-id", metavar="LABEL", help="vault id to encrypt with")


class _Refused(Exception):
    """Bad input for ``cdlib vault`` (a message naming the file)."""


def main(args: argparse.Namespace) -> int:
    """Run one ``cdlib vault`` action; return the exit code."""
    try:
        keyring = keyring_from_args(args)
        _ACTIONS[args.vault_action](args, keyring)
    except (VaultError, _Refused) as exc:
        print(f"cdlib vault: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Refused(f"{path}: cannot read: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes, keep_mode_of: Path | None = None) -> None:
    # The temporary file is created 0600, so a secret is never readable by others; a new
    # file stays 0600, a replaced one keeps its mode.
    try:
        mode = keep_mode_of.stat().st_mode & 0o777 if keep_mode_of is not None else None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, private=mode is None, mode=mode)
    except OSError as exc:
        raise _Refused(f"{path}: cannot write: {exc.strerror or exc}") from None


def _single_output(args: argparse.Namespace) -> Path | None:
    output: str | None = args.output
    if output is not None and len(args.files) > 1:
        raise _Refused("--output takes one input file")
    return None if output is None else Path(output)


def _encrypt(args: argparse.Namespace, keyring: Keyring) -> None:
    output = _single_output(args)
    plans: list[tuple[Path, bytes]] = []
    for name in args.files:
        path = Path(name)
        data = _read(path)
        if is_encrypted(data):
            raise _Refused(f"{path}: already vault-encrypted")
        plans.append((path, keyring.encrypt(data, args.encrypt_vault_id).encode()))
    for path, text in plans:  # every file checked before any is written
        _write(output or path, text, keep_mode_of=None if output else path)
        print(f"Encryption successful: {output or path}", file=sys.stderr)


def _decrypt_all(
    args: argparse.Namespace, keyring: Keyring
) -> list[tuple[Path, bytes, VaultPassword]]:
    out = []
    for name in args.files:
        path = Path(name)
        data = _read(path)
        if not is_encrypted(data):
            raise _Refused(f"{path}: not vault-encrypted")
        plain, pw = keyring.open(data, str(path))
        out.append((path, plain, pw))
    return out


def _decrypt(args: argparse.Namespace, keyring: Keyring) -> None:
    output = _single_output(args)
    for path, plain, _ in _decrypt_all(args, keyring):
        if output is not None and str(output) == "-":
            _emit(plain)
            continue
        _write(output or path, plain)  # 0600: the one file cdlib writes in clear
        print(f"Decryption successful: {output or path}", file=sys.stderr)


def _view(args: argparse.Namespace, keyring: Keyring) -> None:
    for _, plain, _ in _decrypt_all(args, keyring):
        _emit(plain)


def _emit(data: bytes) -> None:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # stdout replaced by a text stream (tests, embedding)
        sys.stdout.write(data.decode("utf-8", "replace"))
    else:
        sys.stdout.flush()
        buffer.write(data)
    sys.stdout.flush()


def _rekey(args: argparse.Namespace, keyring: Keyring) -> None:
    if args.new_vault_id:
        label, source = parse_vault_id(args.new_vault_id)
        new = read_password_source(source, label)
    elif args.new_vault_password_file:
        new = read_password_source(args.new_vault_password_file)
    else:
        new = read_password_source("prompt", args.encrypt_vault_id or "default")
    decrypted = _decrypt_all(args, keyring)
    for path, plain, _ in decrypted:
        _write(path, Keyring([new]).encrypt(plain).encode(), keep_mode_of=path)
        print(f"Rekey successful: {path}", file=sys.stderr)


def _edit_text(initial: bytes, suffix: str) -> bytes:
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    with tempfile.TemporaryDirectory(prefix="cdlib-vault-") as tmpdir:  # created 0700
        fd, tmp = tempfile.mkstemp(dir=tmpdir, suffix=suffix)  # created 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(initial)
        try:
            done = subprocess.run([*shlex.split(editor), tmp], check=False)
        except OSError as exc:
            raise _Refused(f"cannot run editor {editor!r}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise _Refused(f"editor {editor!r} exited with status {done.returncode}; not saved")
        return Path(tmp).read_bytes()


def _edit(args: argparse.Namespace, keyring: Keyring) -> None:
    for path, plain, pw in _decrypt_all(args, keyring):
        edited = _edit_text(plain, path.suffix)
        if edited == plain:
            continue  # unchanged: keep the file (and its salt) as it was
        _write(path, Keyring([pw]).encrypt(edited).encode(), keep_mode_of=path)


def _create(args: argparse.Namespace, keyring: Keyring) -> None:
    for name in args.files:
        path = Path(name)
        if path.exists():
            raise _Refused(f"{path}: already exists (use 'cdlib vault edit {path}')")
        keyring.for_encryption(args.encrypt_vault_id)  # fail before the editor opens
    for name in args.files:
        path = Path(name)
        text = _edit_text(b"", path.suffix)
        _write(path, keyring.encrypt(text, args.encrypt_vault_id).encode())


def _encrypt_string(args: argparse.Namespace, keyring: Keyring) -> None:
    values: list[str] = list(args.values)
    names: list[str] = list(args.name)
    if not values:
        values = [sys.stdin.read()]
        if args.stdin_name:
            names = [args.stdin_name]
    if names and len(names) != len(values):
        raise _Refused(f"{len(names)} --name for {len(values)} values")
    blocks = []
    for i, value in enumerate(values):
        text = keyring.encrypt(value.encode(), args.encrypt_vault_id)
        body = "".join(f"          {line}\n" for line in text.splitlines())
        lead = f"{names[i]}: " if names else ""
        blocks.append(f"{lead}!vault |\n{body}")
    sys.stdout.write("".join(blocks))


_ACTIONS = {
    "encrypt": _encrypt,
    "decrypt": _decrypt,
    "view": _view,
    "edit": _edit,
    "create": _create,
    "rekey": _rekey,
    "encrypt-string": _encrypt_string,
}
