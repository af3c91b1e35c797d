"""The release lock: two releases of the same app never interleave.

The lock is a file created with ``O_EXCL`` holding its owner (user, machine, pid, since,
release id). A lock whose process is gone (same machine, pid not alive) is *stale*: it is
reported with its owner and can be broken safely.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
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
        """True when the owner ran on this machine and its process is gone."""
        if self.machine != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


class LockHeld(CdlibError):
    """Another release of the app holds the lock."""

    def __init__(self, app: str, owner: LockOwner | None) -> None:
        self.app = app
        self.owner = owner
        who = owner.describe() if owner else "an unknown owner (unreadable lock file)"
        stale = owner is not None and owner.is_stale()
        hint = (
            f"; its process is gone: the lock is STALE, break it with "
            f"'cdlib unlock {app} --stale' or re-run with --resume"
            if stale
            else "; wait for it to finish, or 'cdlib abort' it"
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
        """The current holder, or ``None`` when free or unreadable."""
        return read_owner(self.path)

    def acquire(self, *, break_stale: bool = False) -> None:
        """Take the lock, or raise :class:`LockHeld` naming the holder."""
        me = LockOwner(
            getpass.getuser(), socket.gethostname(), os.getpid(), time.time(), self.release_id
        )
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.owner()
                if break_stale and holder is not None and holder.is_stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise LockHeld(self.app, holder) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(me), fh)
            self.held = True
            return
        raise LockHeld(self.app, self.owner())

    def release(self) -> None:
        """Give the lock back (only if this object holds it)."""
        if self.held:
            holder = self.owner()
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


def read_owner(path: Path) -> LockOwner | None:
    """Parse a lock file; ``None`` when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
        return LockOwner(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def break_lock(app: str, *, stale_only: bool = True, state_dir: str | None = None) -> LockOwner:
    """Remove the app's lock and return who held it.

    With ``stale_only`` (the default) a lock whose owner may still be running is refused.
    """
    path = app_dir(app, state_dir) / "release.lock"
    owner = read_owner(path)
    if owner is None and not path.exists():
        raise CdlibError(f"release lock of {app!r} is not held")
    if stale_only and (owner is None or not owner.is_stale()):
        who = owner.describe() if owner else "an unknown owner"
        raise CdlibError(
            f"release lock of {app!r} is held by {who}, which may still be running; "
            "use --force to break it anyway"
        )
    path.unlink(missing_ok=True)
    assert owner is not None or not stale_only
    return owner or LockOwner("unknown", "unknown", 0, 0.0, "unknown")
