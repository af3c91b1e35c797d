"""Where release state lives: one store (:mod:`cdlib.state`), one prefix per app.

A location (``state_dir=`` of a strategy and of every function here, ``--state`` of the
CLI) is a directory or ``s3://bucket/prefix``; ``None`` is ``$CDLIB_STATE``, else the
local directory ``$CDLIB_STATE_DIR`` or ``~/.local/state/cdlib``. Keys of an app are
``<app>/history/<id>.json``, ``<app>/release.lock``, ``<app>/control.json``,
``<app>/interrupt/<id>.json`` and ``<app>/traffic.lock``.
"""

from __future__ import annotations

import os
import re

from cdlib.state import Store, open_store

_APP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: A state location: a directory, ``s3://bucket/prefix``, a store, or ``None`` (default).
Location = str | os.PathLike[str] | Store | None


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
