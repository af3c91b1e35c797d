"""Stopping a running release from outside, and guarding its traffic changes.

Two things can make a release's next traffic change wrong: an operator changed the
weights by hand (during a pause), or ``cdlib rollback`` ran from another shell. In both
cases the release must stop without touching traffic again, and be recorded as
interrupted.

* ``cdlib rollback`` writes an *interrupt marker* for the running release
  (``<state>/<app>/interrupt/<release id>.json``); the release checks it at every pause
  tick, gate poll and before each traffic change.
* Every traffic change of a release and the switch of a rollback happen under the app's
  *traffic lock* (``flock`` on ``<state>/<app>/traffic.lock``), held only for one router
  call. A rollback writes the marker first and then takes the traffic lock: a change the
  release began before is finished by then (and undone by the switch), and any later
  one sees the marker and does not happen.
* Before a change the release reads the router back (:func:`change_traffic`): weights
  other than those its previous step set mean someone else moved traffic, and it stops.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cdlib.engine.errors import CdlibError
from cdlib.release.state import app_dir, read_json, write_json_atomic
from cdlib.traffic.base import Router, RouterState

#: Seconds a rollback waits for a release's router call in flight to end.
TRAFFIC_LOCK_TIMEOUT = 60.0


class Interrupted(CdlibError):
    """The release was stopped from outside; traffic was left as found."""


def _marker(app: str, release_id: str, state_dir: str | None) -> Path:
    return app_dir(app, state_dir) / "interrupt" / f"{release_id}.json"


def request(
    app: str, release_id: str, *, by: str, reason: str, state_dir: str | None = None
) -> None:
    """Ask the running release ``release_id`` to stop where it is (written atomically)."""
    write_json_atomic(
        _marker(app, release_id, state_dir), {"by": by, "reason": reason, "at": time.time()}
    )


def requested(app: str, release_id: str, *, state_dir: str | None = None) -> str | None:
    """Why the release was asked to stop (``None`` when it was not)."""
    try:
        data = read_json(_marker(app, release_id, state_dir))
    except ValueError:
        # A damaged marker still means someone asked to stop.
        return "interrupted (unreadable interrupt marker)"
    if data is None:
        return None
    if not isinstance(data, dict):
        return "interrupted"
    by = f" by {data['by']}" if isinstance(data.get("by"), str) and data["by"] else ""
    return f"{data.get('reason') or 'interrupted'}{by}"


def check(app: str, release_id: str, *, state_dir: str | None = None) -> None:
    """Raise :class:`Interrupted` when the release was asked to stop."""
    why = requested(app, release_id, state_dir=state_dir)
    if why is not None:
        raise Interrupted(f"release interrupted: {why}; traffic left as it is")


@contextmanager
def traffic_lock(
    app: str, *, state_dir: str | None = None, timeout: float = TRAFFIC_LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold the app's traffic lock (``flock``; released by the kernel if the process dies)."""
    path = app_dir(app, state_dir) / "traffic.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CdlibError(
                        f"traffic lock of {app!r} ({path}) still held after {timeout:g}s: "
                        "a router call of the running release does not end"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def change_traffic(
    app: str,
    release_id: str,
    router: Router,
    apply: Callable[[], RouterState],
    *,
    expected: Mapping[str, int] | None,
    state_dir: str | None = None,
) -> RouterState:
    """Run one traffic change of a release, unless it was interrupted.

    Under the traffic lock: stop with :class:`Interrupted` when an interrupt marker is
    there, or when the router reads back other weights than ``expected`` (what the
    release itself set last; ``None`` skips that check); else ``apply()``.
    """
    with traffic_lock(app, state_dir=state_dir):
        check(app, release_id, state_dir=state_dir)
        if expected is not None:
            found = dict(router.state().weights)
            want = dict(expected)
            if found != want:
                raise Interrupted(
                    f"traffic was changed outside this release: expected weights {want}, "
                    f"found {found}; stopped and left traffic as found"
                )
        return apply()
