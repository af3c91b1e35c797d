"""Secret values and their redaction from everything cdlib prints or records.

A :class:`~cdlib.secret.Secret` (defined in :mod:`cdlib.secret`, re-exported here) renders
to its real value only inside templates and commands sent to hosts; its ``str`` and
``repr`` are masked. Every message, diff, event and
exception text passes through a :class:`Redactor` that knows every secret value of
the run, so a secret that reached a file's content is masked in the diff too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from cdlib.secret import MASK, Secret

__all__ = ["MASK", "Redactor", "Secret", "reveal_all"]


class Redactor:
    """Masks every known secret value in text; shared by a whole run."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = {v for v in values if v}
        self._lock = threading.Lock()
        self._ordered: list[str] = []
        self._rebuild()

    def add(self, value: str) -> None:
        """Remember ``value`` as secret (empty strings are ignored)."""
        if value and value not in self._values:
            with self._lock:
                self._values.add(value)
                self._rebuild()

    def collect(self, obj: Any) -> None:
        """Find :class:`Secret` objects in nested vars and remember their values."""
        if isinstance(obj, Secret):
            self.add(obj.reveal())
        elif isinstance(obj, Mapping):
            for v in obj.values():
                self.collect(v)
        elif isinstance(obj, list | tuple | set):
            for v in obj:
                self.collect(v)

    def _rebuild(self) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._ordered = sorted(self._values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for v in self._ordered:
            if v in text:
                text = text.replace(v, MASK)
        return text

    def deep(self, obj: Any) -> Any:
        """Redact every string inside a JSON-like structure."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, Secret):
            return MASK
        if isinstance(obj, Mapping):
            return {k: self.deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.deep(v) for v in obj]
        return obj


def reveal_all(obj: Any) -> Any:
    """Replace :class:`Secret` objects with their values (for sending to hosts only)."""
    if isinstance(obj, Secret):
        return obj.reveal()
    if isinstance(obj, Mapping):
        return {k: reveal_all(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [reveal_all(v) for v in obj]
    return obj
