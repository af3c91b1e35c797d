"""The interface of a state store: keyed objects with conditional writes.

Release state (history records, gate signals, interrupt markers, the release lock) is a
set of small objects under keys like ``<app>/history/<id>.json``. A :class:`Store` gets,
puts, lists and deletes them; a put or delete may be conditional, as S3 does it:
``if_none_match`` creates only when the key is absent, ``if_match`` replaces or deletes
only the version with that ETag; a failed condition raises :class:`PreconditionFailed`.
Locks built on these conditions are in :mod:`cdlib.state.lease`.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from cdlib.errors import CdlibError

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class StateError(CdlibError):
    """The state store cannot be used: a bad location, or a read or write failed."""


class PreconditionFailed(StateError):
    """A conditional put or delete found the key in another state than required."""


@dataclass(frozen=True)
class Blob:
    """An object's bytes and its ETag (changes with every write)."""

    data: bytes
    etag: str


def check_key(key: str) -> str:
    """``key`` when it is ``part/part/...`` of safe names (no ``..``, no empty part)."""
    parts = key.split("/")
    if not key or not all(_KEY_PART.match(p) and p not in (".", "..") for p in parts):
        raise StateError(f"invalid state key {key!r}")
    return key


class Store(ABC):
    """Where release state lives: the local directory or an S3 prefix.

    ``lease`` is how long (seconds) a lock taken in this store stays valid unless its
    holder renews it; ``None`` when a lock's holder is judged by its process instead
    (the local store: :func:`cdlib.lockowner.judge_stale`).
    """

    lease: float | None = None

    @property
    @abstractmethod
    def location(self) -> str:
        """The store's location as a user writes it (a path, ``s3://bucket/prefix``)."""

    def where(self, key: str) -> str:
        """The full name of ``key`` for messages (a file path, an ``s3://`` URL)."""
        return f"{self.location.rstrip('/')}/{key}"

    @abstractmethod
    def get(self, key: str) -> Blob | None:
        """The object at ``key``; ``None`` when there is none."""

    @abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        private: bool = True,
    ) -> str:
        """Write ``data`` whole at ``key`` and return its new ETag.

        ``if_none_match``: only when ``key`` does not exist; ``if_match``: only when its
        ETag is this one; :class:`PreconditionFailed` otherwise. ``private`` objects may
        be readable by their owner only (the local store writes them 0600).
        """

    @abstractmethod
    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove ``key`` (absent is fine); with ``if_match`` only that version, else
        :class:`PreconditionFailed`."""

    @abstractmethod
    def names(self, prefix: str) -> list[str]:
        """Names of the objects directly below ``prefix/`` (not in sub-prefixes), sorted."""

    @abstractmethod
    def children(self, prefix: str) -> list[str]:
        """Names of the sub-prefixes directly below ``prefix/`` (``""``: the top), sorted."""

    @abstractmethod
    def mutex(self, key: str, *, timeout: float) -> AbstractContextManager[None]:
        """Hold a short exclusive section named ``key`` (one router call), waiting up to
        ``timeout`` seconds for another holder; :class:`StateError` when it does not end."""

    # -- JSON helpers --------------------------------------------------------------
    def get_json(self, key: str) -> Any:
        """The JSON object at ``key``; ``None`` when absent, :class:`ValueError` when it is
        not JSON text."""
        blob = self.get(key)
        if blob is None:
            return None
        return json.loads(blob.data.decode("utf-8"))

    def put_json(self, key: str, data: Any, **conditions: Any) -> str:
        """Write ``data`` as JSON (sorted keys) at ``key``; conditions as :meth:`put`."""
        text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
        return self.put(key, text.encode("utf-8"), **conditions)

    def update_json(self, key: str, change: Any, *, attempts: int = 20) -> Any:
        """Read-modify-write the JSON object at ``key`` safely against other writers.

        ``change(old)`` gets the current value (``None`` when absent) and returns the new
        one, or ``None`` to write nothing; the write is conditional on what was read and
        retried when another writer got in between. Returns what was written.
        """
        for _ in range(attempts):
            blob = self.get(key)
            old = None if blob is None else json.loads(blob.data.decode("utf-8"))
            new = change(old)
            if new is None:
                return old
            try:
                if blob is None:
                    self.put_json(key, new, if_none_match=True)
                else:
                    self.put_json(key, new, if_match=blob.etag)
                return new
            except PreconditionFailed:
                continue
        raise StateError(f"{self.where(key)}: too many concurrent writers, gave up")
