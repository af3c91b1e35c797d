"""Find where user code created an object: the first frame outside the cdlib package."""

from __future__ import annotations

import os
import sys
from types import FrameType

from cdlib.engine.errors import Origin

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def caller_origin() -> Origin:
    """File and line of the nearest caller that is not cdlib itself."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        fname = frame.f_code.co_filename
        if (
            not os.path.abspath(fname).startswith(_PKG_DIR + os.sep)
            and not fname.startswith("<frozen")
            and "dataclasses" not in os.path.basename(fname)
            and not fname.startswith("<string")
        ):
            return Origin(_display_path(fname), frame.f_lineno)
        frame = frame.f_back
    return Origin("<unknown>", 0)


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
