"""The release lock: two releases of the same app never interleave.

The lock is a file holding its :class:`~cdlib.lockowner.LockOwner` (user, machine, pid,
since, release id as token, and the machine's identity). It is written whole to a temp
file first and then hard-linked to the lock name (:func:`cdlib.atomicfile.write_atomic`
with ``exclusive``): ``link(2)`` fails when the name exists, and the lock appears
complete or not at all (a full disk fails the write, not the lock). A lock whose run is
provably gone (this machine, boot and pid namespace, process exited; the rule the deploy
lock uses too, :func:`cdlib.lockowner.judge_stale`) is *stale*: it is reported with its
owner and can be broken safely. A lock from another machine, container or pid namespace
with the same hostname, or from an older cdlib without that identity, is never stale.
A lock that cannot be read (hand-edited, damaged) is *corrupt*: no running cdlib can have
written it, so it is reported with its path and can be broken like a stale one.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType

from cdlib.atomicfile import write_atomic
from cdlib.engine.errors import CdlibError
from cdlib.lockowner import LockOwner, mark_active, mark_inactive, new_owner, owner_from_dict
from cdlib.release.state import app_dir

__all__ = ["CorruptLock", "LockHeld", "LockOwner", "ReleaseLock", "break_lock", "read_owner"]


class CorruptLock(CdlibError):
    """A lock file that cannot be read as an owner; names the file and what is wrong."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"{path}: {why}")


class LockHeld(CdlibError):
    """Another release of the app holds the lock (or a corrupt lock file blocks it)."""

    def __init__(
        self, app: str, owner: LockOwner | None, *, corrupt: CorruptLock | None = None
    ) -> None:
        self.app = app
        self.owner = owner
        self.corrupt = corrupt
        if corrupt is not None:
            super().__init__(
                f"release lock of {app!r} is corrupt ({corrupt}); no running cdlib wrote "
                f"it: break it with 'cdlib unlock {app}'"
            )
            return
        who = (
            f"{owner.describe()}, release {owner.token}"
            if owner
            else "a release that is taking it right now"
        )
        stale = owner is not None and owner.is_stale()
        hint = (
            f"; its process is gone: the lock is STALE, break it with 'cdlib unlock {app}'"
            if stale
            else f"; wait for it to finish, or stop it with 'cdlib abort {app}'"
        )
        super().__init__(f"release lock of {app!r} is held by {who}{hint}")


class ReleaseLock:
    """``with ReleaseLock(app, release_id):`` holds the app's release lock."""

    def __init__(self, app: str, release_id: str, *, state_dir: str | None = None) -> None:
        self.app = app
        self.release_id = release_id
        self.path = app_dir(app, state_dir) / "release.lock"
        self.held = False

    def owner(self) -> LockOwner | None:
        """The current holder, ``None`` when free; :class:`CorruptLock` when unreadable."""
        return read_owner(self.path)

    def acquire(self, *, break_stale: bool = False) -> None:
        """Take the lock, or raise :class:`LockHeld` naming the holder.

        With ``break_stale`` a stale or corrupt lock is broken first.
        """
        me = new_owner(self.release_id)
        # Active before the lock exists: another lock of this process that finds it must
        # not judge it stale while this one is still taking it.
        mark_active(me.token)
        for _ in range(2):
            try:
                write_atomic(self.path, me.to_json() + "\n", mode=0o644, exclusive=True)
            except FileExistsError:
                try:
                    holder = self.owner()
                except CorruptLock as bad:
                    if break_stale:
                        self.path.unlink(missing_ok=True)
                        continue
                    mark_inactive(me.token)
                    raise LockHeld(self.app, None, corrupt=bad) from None
                if break_stale and holder is not None and holder.is_stale():
                    self.path.unlink(missing_ok=True)
                    continue
                mark_inactive(me.token)
                raise LockHeld(self.app, holder) from None
            except BaseException:
                mark_inactive(me.token)
                raise
            self.held = True
            return
        mark_inactive(me.token)
        raise LockHeld(self.app, None)

    def release(self) -> None:
        """Give the lock back (only if this object holds it)."""
        if self.held:
            try:
                holder = self.owner()
            except CorruptLock:
                holder = None  # ours was written whole: someone edited it; still ours
            if holder is None or holder.token == self.release_id:
                self.path.unlink(missing_ok=True)
            self.held = False
            mark_inactive(self.release_id)

    def __enter__(self) -> ReleaseLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def read_owner(path: Path) -> LockOwner | None:
    """Parse a lock file; ``None`` when there is none.

    Raises :class:`CorruptLock` (path and what is wrong) when it cannot be read as an
    owner: empty, not JSON, a field missing or of the wrong type. Unknown fields (a newer
    cdlib) are ignored; a file of an older cdlib (no machine identity) loads.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise CorruptLock(path, "not UTF-8 text") from None
    except OSError as exc:
        raise CorruptLock(path, f"cannot read: {exc.strerror or exc}") from None
    if not text.strip():
        raise CorruptLock(path, "empty file")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorruptLock(path, f"invalid JSON: {exc}") from None
    try:
        return owner_from_dict(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CorruptLock(path, str(exc)) from None


def break_lock(app: str, *, stale_only: bool = True, state_dir: str | None = None) -> LockOwner:
    """Remove the app's lock and return who held it.

    With ``stale_only`` (the default) a lock whose owner may still be running is refused;
    a stale or corrupt one is broken (the owner returned for a corrupt one is ``unknown``).
    """
    path = app_dir(app, state_dir) / "release.lock"
    try:
        owner = read_owner(path)
    except CorruptLock:
        path.unlink(missing_ok=True)
        return LockOwner("unknown", "unknown", 0, 0.0, "unknown (corrupt lock file)")
    if owner is None:
        raise CdlibError(f"release lock of {app!r} is not held")
    if stale_only and not owner.is_stale():
        raise CdlibError(
            f"release lock of {app!r} is held by {owner.describe()}, which may still be "
            "running; use --force to break it anyway"
        )
    path.unlink(missing_ok=True)
    return owner
