"""The release lock: two releases of the same app never interleave.

The lock is the object ``<app>/release.lock`` of the state store holding its
:class:`~cdlib.lockowner.LockOwner` (user, machine, pid, since, release id as token, and
the machine's identity), taken and given back with conditional writes
(:class:`cdlib.state.LeaseLock`): created only when absent, so it appears complete or
not at all. In the local store (a file, created by ``link(2)``) a lock whose run is
provably gone (this machine, boot and pid namespace, process exited; the rule the deploy
lock uses too, :func:`cdlib.lockowner.judge_stale`) is *stale*; a lock from another
machine, container or pid namespace with the same hostname, or from an older cdlib
without that identity, is never stale. In S3 the lock holds a lease its release renews
while it runs; a lease that expired unrenewed is stale, wherever its holder ran. A stale
lock is reported with its owner and can be broken safely (``cdlib unlock``). A lock that
cannot be read (hand-edited, damaged) is *corrupt*: no running cdlib can have written it,
so it is reported with where it is and can be broken like a stale one.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from cdlib.engine.errors import CdlibError
from cdlib.lockowner import LockOwner
from cdlib.release.state import Location, app_key, store_for
from cdlib.state import (
    CorruptHolder,
    Held,
    Holder,
    LeaseLock,
    LocalStore,
    StateError,
    Store,
    break_holder,
    read_holder,
)

__all__ = [
    "CorruptLock",
    "LockHeld",
    "LockOwner",
    "ReleaseLock",
    "app_lock",
    "break_lock",
    "read_lock",
    "read_owner",
]


class CorruptLock(CdlibError):
    """A lock that cannot be read as an owner; names where it is and what is wrong."""

    def __init__(self, path: Path | str, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"{path}: {why}")


class LockHeld(CdlibError):
    """Another release of the app holds the lock (or a corrupt lock file blocks it)."""

    def __init__(
        self,
        app: str,
        owner: LockOwner | None,
        *,
        corrupt: CorruptLock | None = None,
        holder: Holder | None = None,
    ) -> None:
        self.app = app
        self.owner = owner
        self.corrupt = corrupt
        #: The lock as read (owner, lease, ETag), when it was read.
        self.holder = holder
        if corrupt is not None:
            super().__init__(
                f"release lock of {app!r} is corrupt ({corrupt}); no running cdlib wrote "
                f"it: break it with 'cdlib unlock {app}'"
            )
            return
        who = (
            f"{holder.describe() if holder else owner.describe()}, release {owner.token}"
            if owner
            else "a release that is taking it right now"
        )
        stale = holder.is_stale() if holder else owner is not None and owner.is_stale()
        gone = (
            "its lease expired" if holder and holder.expires is not None else "its process is gone"
        )
        hint = (
            f"; {gone}: the lock is STALE, break it with 'cdlib unlock {app}'"
            if stale
            else f"; wait for it to finish, or stop it with 'cdlib abort {app}'"
        )
        super().__init__(f"release lock of {app!r} is held by {who}{hint}")


class ReleaseLock:
    """``with ReleaseLock(app, release_id):`` holds the app's release lock.

    In a store with leases the lease is renewed in the background while it is held;
    :func:`cdlib.state.lost` tells (by release id) when that failed.
    """

    def __init__(self, app: str, release_id: str, *, state_dir: Location = None) -> None:
        self.app = app
        self.release_id = release_id
        self.store: Store = store_for(state_dir)
        self.key = app_key(app, "release.lock")
        #: The lock file (local store), else the lock's full name (``s3://...``).
        self.path = _where(self.store, self.key)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = LeaseLock(self.store, self.key, release_id)
        self.held = False

    def owner(self) -> LockOwner | None:
        """The current holder, ``None`` when free; :class:`CorruptLock` when unreadable."""
        holder = read_lock(self.store, self.key)
        return holder.owner if holder else None

    def acquire(self, *, break_stale: bool = False) -> None:
        """Take the lock, or raise :class:`LockHeld` naming the holder.

        With ``break_stale`` a stale or corrupt lock is broken first.
        """
        try:
            self._lock.acquire(break_stale=break_stale)
        except Held as held:
            if held.corrupt is not None:
                raise LockHeld(
                    self.app, None, corrupt=CorruptLock(self.path, held.corrupt.why)
                ) from None
            h = held.holder
            raise LockHeld(self.app, h.owner if h else None, holder=h) from None
        self.held = True

    def release(self) -> None:
        """Give the lock back (only if this object holds it, and it is still ours)."""
        if self.held:
            self._lock.release()
            self.held = False

    def __enter__(self) -> ReleaseLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _where(store: Store, key: str) -> Path | str:
    return store.path(key) if isinstance(store, LocalStore) else store.where(key)


def read_lock(store: Store, key: str) -> Holder | None:
    """The lock at ``key`` (owner, lease, ETag); ``None`` when free, :class:`CorruptLock`
    when it cannot be read as an owner."""
    try:
        return read_holder(store, key)
    except CorruptHolder as bad:
        raise CorruptLock(_where(store, key), bad.why) from None


def app_lock(app: str, state_dir: Location = None) -> Holder | None:
    """The release lock of ``app`` as read; ``None`` when free, :class:`CorruptLock` when
    unreadable."""
    store = store_for(state_dir)
    return read_lock(store, app_key(app, "release.lock"))


def read_owner(path: Path) -> LockOwner | None:
    """Parse a local lock file; ``None`` when there is none.

    Raises :class:`CorruptLock` (path and what is wrong) when it cannot be read as an
    owner: empty, not JSON, a field missing or of the wrong type. Unknown fields (a newer
    cdlib) are ignored; a file of an older cdlib (no machine identity) loads.
    """
    try:
        holder = read_lock(LocalStore(path.parent), path.name)
    except StateError as exc:  # an unreadable file
        raise CorruptLock(path, str(exc)) from None
    return holder.owner if holder else None


def break_lock(app: str, *, stale_only: bool = True, state_dir: Location = None) -> LockOwner:
    """Remove the app's lock and return who held it.

    With ``stale_only`` (the default) a lock whose owner may still be running (a lease
    not yet expired) is refused; a stale or corrupt one is broken (the owner returned
    for a corrupt one is ``unknown``). The delete is conditional on the lock read, so a
    lock renewed or retaken meanwhile is left alone.
    """
    store = store_for(state_dir)
    key = app_key(app, "release.lock")
    try:
        holder = break_holder(store, key, stale_only=stale_only)
    except Held as held:
        h = held.holder
        assert h is not None
        raise CdlibError(
            f"release lock of {app!r} is held by {h.describe()}, which may still be "
            "running; use --force to break it anyway"
        ) from None
    except StateError as exc:
        if store.get(key) is None:
            raise CdlibError(f"release lock of {app!r} is not held") from None
        raise CdlibError(f"release lock of {app!r}: {exc}") from None
    if holder is None:
        return LockOwner("unknown", "unknown", 0, 0.0, "unknown (corrupt lock file)")
    return holder.owner
