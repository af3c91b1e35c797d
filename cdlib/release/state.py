"""Where release state lives: one store (:mod:`cdlib.state`), one prefix per app.

A location (``state_dir=`` of a strategy and of every function here, ``--state`` of the
CLI) is a directory or ``s3://bucket/prefix``; ``None`` is ``$CDLIB_STATE``, else the
local directory ``$CDLIB_STATE_DIR`` or ``~/.local/state/cdlib``. Keys of an app are
``<app>/history/<id>.json``, ``<app>/release.lock``, ``<app>/control.json``,
``<app>/interrupt/<id>.json`` and ``<app>/traffic.lock``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from cdlib.atomicfile import write_atomic
from cdlib.state import Store, default_root, open_store

_APP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: A state location: a directory, ``s3://bucket/prefix``, a store, or ``None`` (default).
Location = str | os.PathLike[str] | Store | None


def state_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The local state directory: ``root``, ``$CDLIB_STATE_DIR`` or ``~/.local/state/cdlib``."""
    if root is not None:
        return Path(root)
    return default_root()


def store_for(location: Location = None) -> Store:
    """The store of a location (see the module docstring)."""
    return open_store(location)


def app_name_ok(app: str) -> bool:
    """Whether ``app`` is a valid app name (letters, digits, ``.``, ``_``, ``-``; max 64)."""
    return bool(_APP_RE.match(app))


def _check_app(app: str) -> None:
    if not _APP_RE.match(app):
        raise ValueError(
            f"app name {app!r} is invalid: use letters, digits, '.', '_' and '-' (max 64)"
        )


def app_key(app: str, *parts: str) -> str:
    """The store key of ``parts`` of one app's state (the app name is checked)."""
    _check_app(app)
    return "/".join((app, *parts))


def app_dir(app: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The local directory of one app's state, created on demand."""
    _check_app(app)
    d = state_root(root) / app
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically, readable by its owner only."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(path, text, private=True)


def read_json(path: Path) -> Any:
    """Read JSON from ``path``; ``None`` when it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
