"""A lock in a state store: created with a conditional write, held under a lease.

The lock is one object holding its owner (:class:`cdlib.lockowner.LockOwner`) and, in a
store with leases (S3), when the lease ends (``expires``, epoch seconds). It is taken by
creating the object only if absent (``If-None-Match: *``), renewed and released only if it
is still the version its holder wrote (``If-Match`` on the ETag), so a holder whose lock
was broken can neither renew nor delete the new holder's lock.

After a create succeeds the holder reads the lock back and goes on only if it finds its
own token and ETag: a store that checks a condition and writes in two steps (moto does)
may let two creates in the same instant both succeed; the later write wins and the
earlier writer sees that and backs off. What remains of that window is closed by the
renewal: it is conditional on the ETag, so a holder whose write was overwritten loses
its lock at its first renewal, before its next traffic change.

A background thread renews the lease every third of it. When a renewal is refused (the
lock was broken or taken over) or has not succeeded for two thirds of the lease, the lock
is *lost*: :func:`lost` says why, and a release checks it before every traffic change.

A lock is *stale* when its lease expired unrenewed (its holder is gone or cut off), or,
in a store without leases (local), when its holder provably is gone
(:func:`cdlib.lockowner.judge_stale`). Expiry is judged by the reader's clock against the
holder's: machines sharing a bucket need clocks in sync to well within the lease.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass

from cdlib.lockowner import LockOwner, mark_active, mark_inactive, new_owner, owner_from_dict
from cdlib.state.store import PreconditionFailed, StateError, Store

#: Seconds between the create of a lock and reading it back.
SETTLE = 0.2

#: Why the lock with a token was lost, for the locks this process holds.
_LOST: dict[str, str] = {}
_LOST_GUARD = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """What a lock object says: its owner, when its lease ends (``None``: no lease), its
    ETag."""

    owner: LockOwner
    expires: float | None
    etag: str

    def is_stale(self, now: float | None = None) -> bool:
        """True when the lease expired, or (no lease) the owner provably is gone."""
        if self.expires is not None:
            return (time.time() if now is None else now) > self.expires
        return self.owner.is_stale()

    def describe(self) -> str:
        """The owner, and when its lease ends (if it has one)."""
        text = self.owner.describe()
        if self.expires is not None:
            text += (
                f", lease until {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.expires))}"
            )
        return text


class CorruptHolder(StateError):
    """A lock object that cannot be read as an owner; ``where`` names it."""

    def __init__(self, where: str, why: str) -> None:
        self.where = where
        self.why = why
        super().__init__(f"{where}: {why}")


class Held(StateError):
    """The lock is held by another (``holder``; ``None`` when it was being taken or
    released at that very moment), or a corrupt lock object blocks it."""

    def __init__(self, holder: Holder | None, corrupt: CorruptHolder | None = None) -> None:
        self.holder = holder
        self.corrupt = corrupt
        super().__init__(
            str(corrupt) if corrupt else f"held by {holder.describe() if holder else 'another'}"
        )


def read_holder(store: Store, key: str) -> Holder | None:
    """The lock at ``key``; ``None`` when free, :class:`CorruptHolder` when unreadable."""
    blob = store.get(key)
    if blob is None:
        return None
    where = store.where(key)
    try:
        text = blob.data.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptHolder(where, "not UTF-8 text") from None
    if not text.strip():
        raise CorruptHolder(where, "empty file")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorruptHolder(where, f"invalid JSON: {exc}") from None
    try:
        owner = owner_from_dict(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CorruptHolder(where, str(exc)) from None
    expires = data.get("expires")
    if expires is not None and (not isinstance(expires, int | float) or isinstance(expires, bool)):
        raise CorruptHolder(where, f"field 'expires' has a bad value {expires!r}")
    return Holder(owner, None if expires is None else float(expires), blob.etag)


def lost(token: str) -> str | None:
    """Why this process lost the lock it took with ``token`` (``None`` while it holds it)."""
    with _LOST_GUARD:
        return _LOST.get(token)


class LeaseLock:
    """The lock at ``key`` of ``store`` for the run with ``token``."""

    def __init__(self, store: Store, key: str, token: str, *, private: bool = False) -> None:
        self.store = store
        self.key = key
        self.token = token
        self.private = private
        self.lease = store.lease
        self.held = False
        self._etag = ""
        self._owner: LockOwner | None = None
        self._last_ok = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self, owner: LockOwner) -> bytes:
        data = json.loads(owner.to_json())
        if self.lease is not None:
            data["lease"] = self.lease
            data["expires"] = time.time() + self.lease
        return (json.dumps(data, sort_keys=True) + "\n").encode("utf-8")

    def acquire(self, *, break_stale: bool = False) -> None:
        """Take the lock, or raise :class:`Held`; ``break_stale`` breaks a stale or
        corrupt lock first."""
        me = new_owner(self.token)
        # Active before the lock exists: another lock of this process that finds it must
        # not judge it stale while this one is still taking it.
        mark_active(me.token)
        try:
            self._take(me, break_stale)
        except BaseException:
            mark_inactive(me.token)
            raise

    def _take(self, me: LockOwner, break_stale: bool) -> None:
        for _ in range(3):
            try:
                etag = self.store.put(
                    self.key, self._body(me), if_none_match=True, private=self.private
                )
            except PreconditionFailed:
                try:
                    holder = read_holder(self.store, self.key)
                except CorruptHolder as bad:
                    if break_stale:
                        self.store.delete(self.key)
                        continue
                    raise Held(None, bad) from None
                if holder is None:
                    continue  # released in between: try again
                if break_stale and holder.is_stale():
                    # Renewed or retaken meanwhile: the delete fails; look again.
                    with contextlib.suppress(PreconditionFailed):
                        self.store.delete(self.key, if_match=holder.etag)
                    continue
                raise Held(holder) from None
            if self.lease is not None:
                # Read back: see the module docstring (two creates in the same instant).
                time.sleep(SETTLE)
                try:
                    found = read_holder(self.store, self.key)
                except CorruptHolder:
                    found = None
                if found is None or found.owner.token != self.token or found.etag != etag:
                    raise Held(found)
            self._etag = etag
            self._owner = me
            self._last_ok = time.monotonic()
            self.held = True
            with _LOST_GUARD:
                _LOST.pop(self.token, None)
            if self.lease is not None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._renew_loop, name=f"lease {self.key}", daemon=True
                )
                self._thread.start()
            return
        raise Held(None)

    def _lose(self, why: str) -> None:
        with _LOST_GUARD:
            _LOST.setdefault(self.token, why)

    def renew(self) -> None:
        """Extend the lease once (the background thread calls this); marks the lock lost
        when the store refuses, or when renewals fail for two thirds of the lease."""
        assert self._owner is not None and self.lease is not None
        try:
            self._etag = self.store.put(
                self.key, self._body(self._owner), if_match=self._etag, private=self.private
            )
            self._last_ok = time.monotonic()
        except PreconditionFailed:
            self._lose(f"lock {self.store.where(self.key)} was broken or taken over")
        except Exception as exc:
            if time.monotonic() - self._last_ok > self.lease * 2 / 3:
                self._lose(f"lease of {self.store.where(self.key)} could not be renewed: {exc}")

    def _renew_loop(self) -> None:
        assert self.lease is not None
        while not self._stop.wait(self.lease / 3):
            if lost(self.token) is not None:
                return
            self.renew()

    def release(self) -> None:
        """Give the lock back, if this object still holds it (stop renewing first)."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.store.delete(self.key, if_match=self._etag)
        except PreconditionFailed:
            try:
                read_holder(self.store, self.key)
            except CorruptHolder:
                # Ours was written whole: someone edited it; no running cdlib wrote it.
                self.store.delete(self.key)
            # Else broken and perhaps retaken: not ours to delete.
        finally:
            self.held = False
            mark_inactive(self.token)


def break_holder(store: Store, key: str, *, stale_only: bool = True) -> Holder | None:
    """Delete the lock at ``key`` and return who held it (``None``: it was corrupt).

    With ``stale_only`` a lock that is not stale is refused (:class:`Held`). The delete is
    conditional on what was read: a lock renewed meanwhile is not broken.
    """
    try:
        holder = read_holder(store, key)
    except CorruptHolder:
        store.delete(key)
        return None
    if holder is None:
        raise StateError(f"{store.where(key)} is not held")
    if stale_only and not holder.is_stale():
        raise Held(holder)
    try:
        store.delete(key, if_match=holder.etag)
    except PreconditionFailed:
        raise StateError(
            f"{store.where(key)} changed while breaking it (renewed or retaken); look again"
        ) from None
    return holder
