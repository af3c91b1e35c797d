"""Where release state lives: the local directory (default) or an S3 prefix.

:func:`open_store` turns a location into a :class:`Store`: ``None`` is ``$CDLIB_STATE``
(a directory or ``s3://bucket/prefix``), else the local directory (``$CDLIB_STATE_DIR``
or ``~/.local/state/cdlib``); ``s3://...`` is an :class:`~cdlib.state.s3.S3Store`, any
other string a directory. History, gate signals, interrupt markers and the release lock
all go through the store, so the CLI, the strategies and the report read the same thing.
"""

from __future__ import annotations

import os

from cdlib.state.lease import (
    CorruptHolder,
    Held,
    Holder,
    LeaseLock,
    break_holder,
    lost,
    read_holder,
)
from cdlib.state.local import LocalStore, default_root
from cdlib.state.store import Blob, PreconditionFailed, StateError, Store

__all__ = [
    "Blob",
    "CorruptHolder",
    "Held",
    "Holder",
    "LeaseLock",
    "LocalStore",
    "PreconditionFailed",
    "StateError",
    "Store",
    "break_holder",
    "default_root",
    "lost",
    "open_store",
    "read_holder",
]


_S3_STORES: dict[tuple[str, float], Store] = {}


def open_store(location: str | os.PathLike[str] | Store | None = None) -> Store:
    """The store at ``location`` (see the module docstring); a :class:`Store` as is.

    Raises :class:`StateError` for a malformed ``s3://`` location.
    """
    if isinstance(location, Store):
        return location
    if location is None:
        location = os.environ.get("CDLIB_STATE") or None
    if location is None:
        return LocalStore()
    text = os.fspath(location)
    if text.startswith("s3://"):
        from cdlib.state.s3 import S3Store, lease_seconds

        # One store (and one boto3 client: slow to build) per location and lease.
        ident = (text, lease_seconds())
        store = _S3_STORES.get(ident)
        if store is None:
            store = _S3_STORES[ident] = S3Store(text, lease=ident[1])
        return store
    if "://" in text:
        raise StateError(f"state location {text!r}: only a directory or s3://BUCKET/PREFIX")
    return LocalStore(text)
