"""Vault passwords and where they come from, read as Ansible reads them.

* a password file: its content with leading/trailing newlines (``\\r\\n``) removed;
* an executable password file: run it, its standard output (newlines removed); a script
  whose name ends in ``-client`` is passed ``--vault-id LABEL`` as Ansible does;
* ``prompt``: asked on the terminal (surrounding whitespace removed).

Each password has a vault id (``label``); ``default`` unless given as ``label@source``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cdlib.vault.envelope import (
    DEFAULT_ID,
    VaultPasswordError,
    encrypt,
    parse,
    try_decrypt,
)

#: The environment variable naming a password file when no option gives one.
ENV_PASSWORD_FILE = "CDLIB_VAULT_PASSWORD_FILE"

Prompt = Callable[[str], str]


@dataclass(frozen=True)
class VaultPassword:
    """One vault password and its vault id; ``repr`` never shows the password."""

    label: str
    password: bytes = field(repr=False)
    source: str = ""


def _getpass(message: str) -> str:
    import getpass

    return getpass.getpass(message)


def read_password_source(
    source: str, label: str = DEFAULT_ID, prompt: Prompt | None = None
) -> VaultPassword:
    """The password from ``source``: ``prompt``, an executable, or a file."""
    if source == "prompt":
        asked = (prompt or _getpass)(
            "Vault password: " if label == DEFAULT_ID else f"Vault password ({label}): "
        )
        return _checked(VaultPassword(label, asked.strip().encode(), "prompt"))
    path = Path(os.path.expanduser(source))
    if not path.is_file():
        raise VaultPasswordError(f"vault password file {path} not found")
    if os.access(path, os.X_OK):
        argv = [str(path.resolve())]
        if path.stem.endswith("-client"):
            argv += ["--vault-id", label]
        try:
            done = subprocess.run(argv, capture_output=True, check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VaultPasswordError(f"vault password script {path} failed: {exc}") from None
        if done.returncode != 0:
            raise VaultPasswordError(
                f"vault password script {path} exited with status {done.returncode}"
            )
        return _checked(VaultPassword(label, done.stdout.strip(b"\r\n"), str(path)))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VaultPasswordError(
            f"cannot read vault password file {path}: {exc.strerror}"
        ) from None
    return _checked(VaultPassword(label, data.strip(b"\r\n"), str(path)))


def _checked(pw: VaultPassword) -> VaultPassword:
    if not pw.password:
        where = pw.source or "prompt"
        raise VaultPasswordError(f"empty vault password from {where} (vault id {pw.label!r})")
    return pw


def parse_vault_id(spec: str) -> tuple[str, str]:
    """``label@source`` as (label, source); a bare source gets the ``default`` label."""
    label, sep, source = spec.partition("@")
    if not sep:
        return DEFAULT_ID, spec
    if not label or not source:
        raise VaultPasswordError(f"bad --vault-id {spec!r}: expected LABEL@FILE or LABEL@prompt")
    return label, source


class Keyring:
    """The vault passwords of a run, tried in order to open vault text."""

    def __init__(self, passwords: Iterable[VaultPassword] = ()) -> None:
        self.passwords = list(passwords)

    def __bool__(self) -> bool:
        return bool(self.passwords)

    def labels(self) -> list[str]:
        """The vault ids held, in order."""
        return [p.label for p in self.passwords]

    def decrypt(self, text: str | bytes, what: str) -> tuple[bytes, str]:
        """The plaintext of vault ``text`` and the vault id that opened it.

        Passwords whose label matches the header's vault id are tried first. Errors
        name ``what`` (a file, ``file:line``) and the vault ids, never a password.
        """
        plain, pw = self.open(text, what)
        return plain, pw.label

    def open(self, text: str | bytes, what: str) -> tuple[bytes, VaultPassword]:
        """As :meth:`decrypt`, with the password that opened ``text`` itself (two
        passwords may share a vault id: re-encrypting must use the one that worked)."""
        envelope = parse(text)
        if not self.passwords:
            raise VaultPasswordError(
                f"{what}: vault-encrypted, but no vault password was given "
                "(use --vault-password-file, --vault-id, --ask-vault-pass or "
                f"{ENV_PASSWORD_FILE})"
            )
        ordered = sorted(self.passwords, key=lambda p: p.label != envelope.label)
        for pw in ordered:
            plain = try_decrypt(envelope, pw.password)
            if plain is not None:
                return plain, pw
        wanted = f" (encrypted for vault id {envelope.label!r})" if envelope.label else ""
        tried = ", ".join(repr(lb) for lb in dict.fromkeys(self.labels()))
        raise VaultPasswordError(
            f"{what}: cannot decrypt{wanted}: wrong vault password (tried vault ids {tried})"
        )

    def for_encryption(self, label: str | None = None) -> VaultPassword:
        """The password to encrypt with: the one with vault id ``label``, else the only one."""
        if label is not None:
            for pw in self.passwords:
                if pw.label == label:
                    return pw
            raise VaultPasswordError(f"no vault password with vault id {label!r} was given")
        if not self.passwords:
            raise VaultPasswordError(
                "no vault password given (use --vault-password-file, --vault-id, "
                f"--ask-vault-pass or {ENV_PASSWORD_FILE})"
            )
        labels = set(self.labels())
        if len(labels) > 1:
            raise VaultPasswordError(
                "several vault ids given; choose one with --encrypt-vault-id "
                f"({', '.join(sorted(labels))})"
            )
        return self.passwords[0]

    def encrypt(self, plaintext: bytes, label: str | None = None) -> str:
        """Vault text of ``plaintext`` with the password :meth:`for_encryption` picks."""
        pw = self.for_encryption(label)
        return encrypt(plaintext, pw.password, pw.label)


def build_keyring(
    password_files: Iterable[str] = (),
    vault_ids: Iterable[str] = (),
    ask: bool = False,
    prompt: Prompt | None = None,
    environ: dict[str, str] | None = None,
) -> Keyring:
    """The keyring from command-line choices and ``CDLIB_VAULT_PASSWORD_FILE``."""
    env = os.environ if environ is None else environ
    passwords: list[VaultPassword] = []
    for spec in vault_ids:
        label, source = parse_vault_id(spec)
        passwords.append(read_password_source(source, label, prompt))
    for path in password_files:
        passwords.append(read_password_source(path, DEFAULT_ID, prompt))
    if ask:
        passwords.append(read_password_source("prompt", DEFAULT_ID, prompt))
    env_file = env.get(ENV_PASSWORD_FILE)
    if env_file:
        passwords.append(read_password_source(env_file, DEFAULT_ID, prompt))
    return Keyring(passwords)
