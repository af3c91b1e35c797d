"""Extra vars from the command line (``-e``), as Ansible reads them.

Each ``-e`` value is ``key=value`` pairs (values are strings; quote to keep spaces),
a YAML/JSON mapping (``'{"port": 8080}'``), or ``@file`` naming a YAML/JSON file (which
may be vault-encrypted). Later values win.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cdlib.inventory._secrets import unquoted_value_hint
from cdlib.inventory.model import InventoryError
from cdlib.inventory.yaml_source import load_yaml, plain
from cdlib.vault.keyring import Keyring


def parse_extra_vars(values: Sequence[str], vault: Keyring | None = None) -> dict[str, Any]:
    """Merge the ``-e`` ``values`` into one mapping (``vault`` opens encrypted @files)."""
    merged: dict[str, Any] = {}
    for value in values:
        merged.update(_one(value, vault))
    return merged


def _one(value: str, vault: Keyring | None) -> dict[str, Any]:
    text = value.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryError(f"-e @{path}: cannot read: {exc}") from None
        return _mapping(load_yaml(path, content, vault), f"-e @{path}")
    if text.startswith(("{", "[")):
        return _mapping(load_yaml(Path("-e"), text), "-e")
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InventoryError(f"-e {value!r}: {exc}") from None
    out: dict[str, Any] = {}
    for previous, token in zip([None, *tokens], tokens, strict=False):
        key, sep, val = token.partition("=")
        if not sep or not key:
            stray = unquoted_value_hint(previous, token)
            raise InventoryError(f"-e expects key=value, YAML/JSON or @file; got {stray}")
        out[key] = val
    return out


def _mapping(document: Any, where: str) -> dict[str, Any]:
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise InventoryError(f"{where}: extra vars must be a mapping of names to values")
    return {str(k): plain(v) for k, v in document.items()}
