"""Operations on releases from outside a running one: status, history, rollback, signals."""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from cdlib.engine.errors import CdlibError
from cdlib.release import gates, interrupt
from cdlib.release.history import (
    ABORTED,
    FAILED,
    INTERRUPTED,
    ROLLED_BACK,
    SUCCEEDED,
    BadRecord,
    History,
    Recorder,
    ReleaseRecord,
)
from cdlib.release.lock import CorruptLock, LockHeld, ReleaseLock, app_lock
from cdlib.release.routers import spec_from_json
from cdlib.release.state import Location, app_name_ok, store_for


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
    #: Per group, what its router spec knows beyond traffic (Auto Scaling groups: the
    #: group, its launch template version and instance counts).
    groups: dict[str, str] = field(default_factory=dict)
    #: The lock file's path and what is wrong with it, when it cannot be read.
    lock_corrupt: str | None = None
    #: History files skipped as unreadable, each with its path and why.
    skipped_records: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON for ``--format json``."""
        lock: dict[str, Any] | None = None
        if self.lock_corrupt:
            lock = {"owner": None, "stale": False, "corrupt": self.lock_corrupt}
        elif self.lock_owner:
            lock = {"owner": self.lock_owner, "stale": self.lock_stale}
        return {
            "app": self.app,
            "latest": self.latest.to_json() if self.latest else None,
            "unfinished": bool(self.latest and self.latest.unfinished),
            "lock": lock,
            "live": self.live,
            "weights": self.weights,
            "releases": self.releases,
            "router_error": self.router_error,
            "groups": self.groups,
            "skipped_records": self.skipped_records,
        }


def status(
    app: str,
    *,
    state_dir: Location = None,
    read_router: bool = True,
    warn: Callable[[str], None] | None = None,
) -> AppStatus:
    """History, lock and (read back from the router) where traffic goes now.

    Unreadable history records are skipped (passed to ``warn`` and listed); a corrupt
    lock file is reported with its path, not raised.
    """
    hist = History(app, state_dir=state_dir, warn=warn)
    latest = hist.latest()
    corrupt = None
    try:
        holder = app_lock(app, state_dir)
    except CorruptLock as bad:
        holder, corrupt = None, str(bad)
    live, weights, releases, err = None, {}, {}, None
    groups: dict[str, str] = {}
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
            releases = {g: router.tagged_release(g) for g in router.groups}
            groups = spec.describe_groups()
        except Exception as exc:
            err = f"{type(exc).__name__}: {exc}"
    return AppStatus(
        app,
        latest,
        holder.describe() if holder else None,
        bool(holder and holder.is_stale()),
        live,
        weights,
        releases,
        err,
        groups,
        corrupt,
        [str(b) for b in hist.skipped],
    )


def rollback(
    app: str,
    *,
    to_group: str | None = None,
    state_dir: Location = None,
    break_stale: bool = True,
    warn: Callable[[str], None] | None = None,
) -> ReleaseRecord:
    """Send all traffic back to the previous group in one router call; record it.

    Works after a finished release (switch back to its previous group), after one that
    died or was interrupted (traffic goes back to the group that was live before it),
    and while a release is running: that release is interrupted (an interrupt marker it
    checks at every pause tick and before each traffic change), the switch waits for a
    router call of it in flight (the traffic lock) and happens without taking the
    release lock; the running release then stops without touching traffic and records
    itself as interrupted. A stale or corrupt lock is broken. Unreadable history records
    are skipped and passed to ``warn``.
    """
    hist = History(app, state_dir=state_dir, warn=warn)
    records = hist.all()
    if not records:
        raise CdlibError(f"no release of {app!r} recorded: nothing to roll back")
    # The release to undo: the newest one that moved traffic and still stands, or one
    # that never finished or was interrupted (traffic may be anywhere). Failed releases
    # that left or put traffic back where it was are skipped.
    latest = next(
        (r for r in reversed(records) if r.unfinished or r.outcome in (SUCCEEDED, INTERRUPTED)),
        records[-1],
    )
    _warn_if_newer_skipped(hist.skipped, latest, warn)
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
        environment=latest.environment,
    )
    lock = ReleaseLock(app, rec.id, state_dir=state_dir)
    running = None
    try:
        lock.acquire(break_stale=break_stale)
    except LockHeld as held:
        running = _running_release(hist, held)
    try:
        recorder = Recorder(hist, rec)
        if running is not None:
            # Marker first, then the traffic lock: a traffic change the release began
            # before ends before our switch; any later one sees the marker and stops.
            step = recorder.step(f"interrupt running release {running.id}")
            who = f"{rec.user}@{rec.machine}"
            interrupt.request(
                app, running.id, by=who, reason=f"'cdlib rollback' ({rec.id})", state_dir=state_dir
            )
            rec.reason = f"interrupted running release {running.id}"
            recorder.end_step(step, SUCCEEDED, f"interrupt marker written for {running.id}")
        spec = spec_from_json(latest.router)
        try:
            # Auto Scaling groups: the old group may have been scaled in after the bake.
            ready = spec.prepare_switch(target)
        except Exception as exc:
            step = recorder.step(f"make {target} ready for traffic")
            recorder.end_step(step, FAILED, str(exc))
            recorder.finish(FAILED, f"{target} not ready; traffic unchanged: {exc}")
            raise CdlibError(f"rollback: {target} not ready; traffic unchanged: {exc}") from exc
        if ready:
            recorder.end_step(recorder.step(f"make {target} ready for traffic"), SUCCEEDED, ready)
        step = recorder.step(f"switch traffic -> {target}")
        spec.start()  # a rollback is a real change: a stopped local HAProxy is started
        router = spec.build()
        t0 = time.monotonic()
        with interrupt.traffic_lock(app, state_dir=state_dir):
            state = router.switch(target)
        took = time.monotonic() - t0
        recorder.weights(dict(state.weights))
        recorder.end_step(step, SUCCEEDED, f"live: {state.live} (switch took {took:.3f}s)")
        # A release stopped mid-way may have left its preview route open.
        step = recorder.step("remove preview route")
        try:
            removed = router.close_preview()
        except Exception as exc:
            recorder.end_step(step, FAILED, str(exc))
        else:
            recorder.end_step(step, SUCCEEDED, "removed" if removed else "none was open")
        if running is not None and running.id == latest.id:
            pass  # the running release records its own end (interrupted)
        elif latest.unfinished:
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
        elif latest.outcome == INTERRUPTED:
            latest.reason = (latest.reason + "; " if latest.reason else "") + (
                f"traffic restored to {target} by rollback {rec.id}"
            )
            hist.save(latest)
        done = f"switch took {took:.3f}s"
        recorder.finish(SUCCEEDED, f"{rec.reason}; {done}" if rec.reason else done)
        return rec
    finally:
        lock.release()


def _running_release(hist: History, held: LockHeld) -> ReleaseRecord:
    """The release holding the lock, if a rollback may interrupt it; else re-raise."""
    if held.owner is None:
        raise held
    try:
        running = hist.get(held.owner.token)
    except BadRecord:
        running = None
    if running is None or not running.unfinished or running.strategy == "rollback":
        # Not a release we can ask to stop (another rollback, or unknown to history).
        raise held
    return running


def _warn_if_newer_skipped(
    skipped: list[BadRecord], chosen: ReleaseRecord, warn: Callable[[str], None] | None
) -> None:
    # Record ids start with their start time, so a skipped file named after a later id
    # may be the release that should be undone.
    newer = [b for b in skipped if PurePosixPath(str(b.path)).stem > chosen.id]
    if newer and warn is not None:
        warn(
            f"rollback acts on release {chosen.id}, but unreadable record(s) "
            f"{', '.join(str(b.path) for b in newer)} may be newer: if traffic goes to the "
            f"wrong group, run 'cdlib rollback {chosen.app} --to GROUP'"
        )


def signal(
    app: str, what: str, *, state_dir: Location = None, by: str | None = None
) -> ReleaseRecord:
    """Send ``promote`` or ``abort`` to the running release of ``app``; ``by`` (default
    user@machine) is recorded as who approved the gate."""
    latest = History(app, state_dir=state_dir).latest()
    if latest is None or not latest.unfinished:
        raise CdlibError(f"no running release of {app!r} to {what}")
    who = by or f"{getpass.getuser()}@{socket.gethostname()}"
    gates.send(app, latest.id, what, by=who, state_dir=state_dir)
    return latest


@dataclass
class AppSummary:
    """One line of ``cdlib status`` without an app: an app (and environment), its live
    version (that of its latest successful release) and its latest release."""

    app: str
    environment: str | None
    live_version: str | None
    latest: ReleaseRecord | None
    lock_owner: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON for ``--format json``."""
        latest = self.latest
        return {
            "app": self.app,
            "environment": self.environment,
            "live_version": self.live_version,
            "latest": None
            if latest is None
            else {
                "id": latest.id,
                "version": latest.version,
                "outcome": latest.outcome,
                "unfinished": latest.unfinished,
                "started": latest.started,
                "strategy": latest.strategy,
            },
            "lock_owner": self.lock_owner,
        }


def all_apps(
    *, state_dir: Location = None, warn: Callable[[str], None] | None = None
) -> list[AppSummary]:
    """Every app of the state store, one row per environment it released to.

    Reads history and locks only; no router is asked (``cdlib status APP`` does that).
    """
    store = store_for(state_dir)
    out = []
    for app in store.children(""):
        if not app_name_ok(app) or not store.names(f"{app}/history"):
            continue
        recs = History(app, state_dir=store, warn=warn).all()
        try:
            holder = app_lock(app, store)
            lock = holder.describe() if holder else None
        except CorruptLock as bad:
            lock = f"CORRUPT: {bad}"
        envs = sorted({r.environment for r in recs}, key=lambda e: e or "")
        for env in envs or [None]:
            mine = [r for r in recs if r.environment == env]
            live = next((r.version for r in reversed(mine) if r.outcome == SUCCEEDED), None)
            out.append(AppSummary(app, env, live, mine[-1] if mine else None, lock))
    return out
