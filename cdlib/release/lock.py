"""The release lock: two releases of the same app never interleave.

The lock is a file holding its owner (user, machine, pid, since, release id). It is
written whole to a temp file first and then hard-linked to the lock name: ``link(2)``
fails when the name exists (an exclusive create), and the lock appears complete or not at
all (a full disk fails the write, not the lock). A lock whose process is gone (same
machine, pid not alive) is *stale*: it is reported with its owner and can be broken
safely. A lock that cannot be read (hand-edited, damaged) is *corrupt*: no running cdlib
can have written it, so it is reported with its path and can be broken like a stale one.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from cdlib.engine.errors import CdlibError
from cdlib.release.state import app_dir


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock."""

    user: str
    machine: str
    pid: int
    since: float
    release_id: str

    def describe(self) -> str:
        """``alice@ci-3 (pid 4242) since 2026-11-27T21:00:00Z, release r-...``."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))
        return (
            f"{self.user}@{self.machine} (pid {self.pid}) since {when}, release {self.release_id}"
        )

    def is_stale(self) -> bool:
        """True when the owner ran on this machine and its process is gone.

        A pid of 0 or below names no single process (``kill`` would reach a whole
        group), so it is never taken as alive.
        """
        if self.machine != socket.gethostname():
            return False
        if self.pid <= 0:
            return True
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, OverflowError):
            return True
        except PermissionError:
            return False
        return False


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
        who = owner.describe() if owner else "a release that is taking it right now"
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
        me = LockOwner(
            getpass.getuser(), socket.gethostname(), os.getpid(), time.time(), self.release_id
        )
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".release.lock.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(me), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            for _ in range(2):
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    try:
                        holder = self.owner()
                    except CorruptLock as bad:
                        if break_stale:
                            self.path.unlink(missing_ok=True)
                            continue
                        raise LockHeld(self.app, None, corrupt=bad) from None
                    if break_stale and holder is not None and holder.is_stale():
                        self.path.unlink(missing_ok=True)
                        continue
                    raise LockHeld(self.app, holder) from None
                self.held = True
                return
        finally:
            os.unlink(tmp)
        raise LockHeld(self.app, None)

    def release(self) -> None:
        """Give the lock back (only if this object holds it)."""
        if self.held:
            try:
                holder = self.owner()
            except CorruptLock:
                holder = None  # ours was written whole: someone edited it; still ours
            if holder is None or holder.release_id == self.release_id:
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> ReleaseLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


_OWNER_TYPES: dict[str, tuple[type, ...]] = {
    "user": (str,),
    "machine": (str,),
    "pid": (int,),
    "since": (int, float),
    "release_id": (str,),
}


def read_owner(path: Path) -> LockOwner | None:
    """Parse a lock file; ``None`` when there is none.

    Raises :class:`CorruptLock` (path and what is wrong) when it cannot be read as an
    owner: empty, not JSON, a field missing or of the wrong type. Unknown fields (a newer
    cdlib) are ignored.
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
    if not isinstance(data, dict):
        raise CorruptLock(path, f"expected a JSON object, found {type(data).__name__}")
    for name, types in _OWNER_TYPES.items():
        if name not in data:
            raise CorruptLock(path, f"field {name!r} is missing")
        value = data[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise CorruptLock(path, f"field {name!r} has a bad value {value!r}")
    try:
        return LockOwner(**{k: data[k] for k in _OWNER_TYPES})
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
