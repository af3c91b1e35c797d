"""Operations on releases from outside a running one: status, history, rollback, signals."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from cdlib.engine.errors import CdlibError
from cdlib.release import gates
from cdlib.release.history import (
    ABORTED,
    ROLLED_BACK,
    SUCCEEDED,
    History,
    Recorder,
    ReleaseRecord,
)
from cdlib.release.lock import ReleaseLock, read_owner
from cdlib.release.routers import spec_from_json
from cdlib.release.state import app_dir


@dataclass
class AppStatus:
    """What ``cdlib status APP`` reports."""

    app: str
    latest: ReleaseRecord | None
    lock_owner: str | None
    lock_stale: bool
    live: str | None
    weights: dict[str, int]
    releases: dict[str, str | None]
    router_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON for ``--format json``."""
        return {
            "app": self.app,
            "latest": self.latest.to_json() if self.latest else None,
            "unfinished": bool(self.latest and self.latest.unfinished),
            "lock": {"owner": self.lock_owner, "stale": self.lock_stale}
            if self.lock_owner
            else None,
            "live": self.live,
            "weights": self.weights,
            "releases": self.releases,
            "router_error": self.router_error,
        }


def status(app: str, *, state_dir: str | None = None, read_router: bool = True) -> AppStatus:
    """History, lock and (read back from the router) where traffic goes now."""
    hist = History(app, state_dir=state_dir)
    latest = hist.latest()
    owner = read_owner(app_dir(app, state_dir) / "release.lock")
    live, weights, releases, err = None, {}, {}, None
    if read_router and latest and latest.router:
        try:
            spec = spec_from_json(latest.router)
            need = spec.start_needed()
            if need:
                # Status only reads: what a release or rollback would start stays stopped.
                raise RuntimeError(f"not running; a release or rollback would {need}")
            router = spec.build()
            st = router.state()
            live, weights = st.live, dict(st.weights)
            releases = {g: router.release(g) for g in router.groups}
        except Exception as exc:
            err = f"{type(exc).__name__}: {exc}"
    return AppStatus(
        app,
        latest,
        owner.describe() if owner else None,
        bool(owner and owner.is_stale()),
        live,
        weights,
        releases,
        err,
    )


def rollback(
    app: str,
    *,
    to_group: str | None = None,
    state_dir: str | None = None,
    break_stale: bool = True,
) -> ReleaseRecord:
    """Send all traffic back to the previous group in one router call; record it.

    Works after a finished release (switch back to its previous group) and after an
    interrupted one (an unfinished record: traffic goes back to the group that was live
    before it; its record is marked aborted). A stale lock (its process is gone) is
    broken; a live one is refused with its owner named.
    """
    hist = History(app, state_dir=state_dir)
    records = hist.all()
    if not records:
        raise CdlibError(f"no release of {app!r} recorded: nothing to roll back")
    # The release to undo: the newest one that moved traffic and still stands, or one
    # that never finished (traffic may be anywhere). Failed releases that left or put
    # traffic back where it was are skipped.
    latest = next(
        (r for r in reversed(records) if r.unfinished or r.outcome == SUCCEEDED),
        records[-1],
    )
    target = to_group or latest.previous_group
    if not target:
        raise CdlibError(
            f"release {latest.id} of {app!r} has no previous group to go back to "
            "(it was the first release); pass a group explicitly"
        )
    if not latest.router:
        raise CdlibError(f"release {latest.id} recorded no router spec; cannot roll back")
    rec = ReleaseRecord(
        app,
        latest.previous_version or "?",
        "rollback",
        pid=os.getpid(),
        router=latest.router,
        previous_group=latest.new_group,
        new_group=target,
        previous_version=latest.version,
    )
    lock = ReleaseLock(app, rec.id, state_dir=state_dir)
    lock.acquire(break_stale=break_stale)
    try:
        recorder = Recorder(hist, rec)
        step = recorder.step(f"switch traffic -> {target}")
        spec = spec_from_json(latest.router)
        spec.start()  # a rollback is a real change: a stopped local HAProxy is started
        router = spec.build()
        t0 = time.monotonic()
        state = router.switch(target)
        took = time.monotonic() - t0
        recorder.weights(dict(state.weights))
        recorder.end_step(step, SUCCEEDED, f"live: {state.live} (switch took {took:.3f}s)")
        if latest.unfinished:
            latest.outcome = ABORTED
            latest.reason = (latest.reason + "; " if latest.reason else "") + (
                f"interrupted; traffic restored to {target} by rollback {rec.id}"
            )
            latest.finished = time.time()
            hist.save(latest)
        elif latest.outcome == SUCCEEDED:
            latest.outcome = ROLLED_BACK
            latest.reason = f"rolled back by {rec.id}"
            hist.save(latest)
        recorder.finish(SUCCEEDED, f"switch took {took:.3f}s")
        return rec
    finally:
        lock.release()


def signal(app: str, what: str, *, state_dir: str | None = None) -> ReleaseRecord:
    """Send ``promote`` or ``abort`` to the running release of ``app``."""
    latest = History(app, state_dir=state_dir).latest()
    if latest is None or not latest.unfinished:
        raise CdlibError(f"no running release of {app!r} to {what}")
    gates.send(app, latest.id, what, by=os.environ.get("USER", ""), state_dir=state_dir)
    return latest
