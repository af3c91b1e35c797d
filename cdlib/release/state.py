"""Where release state lives on the control side: one directory per app.

``$CDLIB_STATE_DIR`` or ``~/.local/state/cdlib``; point it at shared storage when several
machines release the same app. Every file is written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from cdlib.atomicfile import write_atomic

_APP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def state_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: ``root``, ``$CDLIB_STATE_DIR`` or ``~/.local/state/cdlib``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("CDLIB_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "cdlib"


def app_name_ok(app: str) -> bool:
    """Whether ``app`` is a valid app name (letters, digits, ``.``, ``_``, ``-``; max 64)."""
    return bool(_APP_RE.match(app))


def app_dir(app: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The directory of one app's state, created on demand."""
    if not _APP_RE.match(app):
        raise ValueError(
            f"app name {app!r} is invalid: use letters, digits, '.', '_' and '-' (max 64)"
        )
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
