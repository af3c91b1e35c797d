"""Secret values and their redaction from everything cdlib prints or records.

A :class:`~cdlib.secret.Secret` (defined in :mod:`cdlib.secret`, re-exported here) renders
to its real value only inside templates and commands sent to hosts; its ``str`` and
``repr`` are masked. Every message, diff, event and
exception text passes through a :class:`Redactor` that knows every secret value of
the run, so a secret that reached a file's content is masked in the diff too.
"""

from __future__ import annotations

import dataclasses
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

    def result(self, result: Any) -> None:
        """Redact, in place, every text of a run result (a dataclass such as ``TaskResult``).

        All string fields are covered, so a field added later cannot leak; the exception
        kept for tooling is scrubbed too.
        """
        for f in dataclasses.fields(result):
            value = getattr(result, f.name)
            if isinstance(value, str):
                setattr(result, f.name, self(value))
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                setattr(result, f.name, [self(v) for v in value])
            elif isinstance(value, BaseException):
                self.exception(value)

    def exception(self, exc: BaseException, _seen: set[int] | None = None) -> BaseException:
        """Redact, in place, the text of ``exc``: its args, its string attributes, the
        errors it holds and its cause; returns ``exc`` so that ``raise`` can follow."""
        seen = _seen if _seen is not None else set()
        if id(exc) in seen:
            return exc
        seen.add(id(exc))
        exc.args = tuple(self(a) if isinstance(a, str) else a for a in exc.args)
        for name, value in list(vars(exc).items()):
            if isinstance(value, str):
                setattr(exc, name, self(value))
            elif isinstance(value, BaseException):
                self.exception(value, seen)
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, BaseException):
                        self.exception(v, seen)
        for linked in (exc.__cause__, exc.__context__):
            if linked is not None:
                self.exception(linked, seen)
        return exc


def reveal_all(obj: Any) -> Any:
    """Replace :class:`Secret` objects with their values (for sending to hosts only)."""
    if isinstance(obj, Secret):
        return obj.reveal()
    if isinstance(obj, Mapping):
        return {k: reveal_all(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [reveal_all(v) for v in obj]
    return obj
