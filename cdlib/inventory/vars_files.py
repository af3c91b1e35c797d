"""``group_vars/`` and ``host_vars/`` beside an inventory source.

For an entity ``web`` the first of ``web``, ``web.yml``, ``web.yaml``, ``web.json`` that
exists is used (``vault.yml`` in ``group_vars/web/`` is just one such file; a file may be
vault-encrypted whole); when it is a directory, every file in it (and in its subdirectories) with
no extension or one of those extensions is read, in sorted order, later files winning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cdlib.inventory.model import InventoryError
from cdlib.inventory.yaml_source import load_yaml, plain
from cdlib.vault.keyring import Keyring

_EXTENSIONS = (".yml", ".yaml", ".json")


def find_vars_files(directory: Path, name: str) -> list[Path]:
    """The files that hold variables for ``name`` in ``directory``, in merge order."""
    if not name or name.startswith(os.sep):
        return []
    base = directory / name
    for ext in ("", *_EXTENSIONS):
        candidate = Path(f"{base}{ext}")
        if candidate.is_dir():
            return _walk(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or entry.endswith("~"):
            continue  # hidden files and editor backups
        path = directory / entry
        ext = os.path.splitext(entry)[1]
        if path.is_dir() and not ext:
            found.extend(_walk(path))
        elif path.is_file() and (not ext or ext in _EXTENSIONS):
            found.append(path)
    return found


class VarsFiles:
    """Reads and caches vars files (a file shared by several entities is read once)."""

    def __init__(self, keyring: Keyring | None = None) -> None:
        self._keyring = keyring
        self._cache: dict[Path, dict[str, Any]] = {}

    def load(self, path: Path) -> dict[str, Any]:
        """The variables in one file (empty file: none)."""
        if path not in self._cache:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InventoryError(f"{path}: cannot read vars file: {exc}") from None
            data = load_yaml(path, text, self._keyring)
            if data is None:
                data = {}
            if not isinstance(data, Mapping):
                raise InventoryError(
                    f"{path}:1: a vars file must hold a mapping of names to values, "
                    f"not {type(data).__name__}"
                )
            self._cache[path] = {str(k): plain(v) for k, v in data.items()}
        return self._cache[path]

    def vars_for(self, directory: Path, kind: str, name: str) -> dict[str, Any]:
        """Merged variables of ``name`` from ``directory/kind`` (kind: group_vars/host_vars)."""
        merged: dict[str, Any] = {}
        sub = directory / kind
        if not sub.is_dir():
            return merged
        for path in find_vars_files(sub, name):
            merged.update(self.load(path))
        return merged
