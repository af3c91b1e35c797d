"""Ansible Vault: read and write ``$ANSIBLE_VAULT`` files and ``!vault`` values.

This package sits at the bottom of cdlib (it imports only :mod:`cdlib.vault` itself),
so inventories, the engine and the command line can all use it.
"""

from cdlib.vault.envelope import (
    VaultError,
    VaultFormatError,
    VaultPasswordError,
    encrypt,
    is_encrypted,
)
from cdlib.vault.keyring import Keyring, VaultPassword, build_keyring, read_password_source

__all__ = [
    "Keyring",
    "VaultError",
    "VaultFormatError",
    "VaultPassword",
    "VaultPasswordError",
    "build_keyring",
    "encrypt",
    "is_encrypted",
    "read_password_source",
]
