"""Stopping a running release from outside, and guarding its traffic changes.

Two things can make a release's next traffic change wrong: an operator changed the
weights by hand (during a pause), or ``cdlib rollback`` ran from another shell. In both
cases the release must stop without touching traffic again, and be recorded as
interrupted.

* ``cdlib rollback`` writes an *interrupt marker* for the running release (the object
  ``<app>/interrupt/<release id>.json`` of the state store, local or S3, so a rollback
  from another machine reaches it); the release checks it at every pause tick, gate poll
  and before each traffic change.
* Every traffic change of a release and the switch of a rollback happen under the app's
  *traffic lock* (``<app>/traffic.lock``), held only for one router call: in the local
  store an ``flock`` on that file, in S3 a second lock object created with a conditional
  write and held under a lease (:meth:`cdlib.state.Store.mutex`; a holder that died
  leaves it to expire). A rollback writes the marker first and then takes the traffic
  lock: a change the release began before is finished by then (and undone by the
  switch), and any later one sees the marker and does not happen.
* A release whose lock lease could not be renewed (S3: broken, taken over, or the store
  unreachable for most of a lease) is stopped the same way before its next traffic
  change (:func:`cdlib.state.lost`).
* Before a change the release reads the router back (:func:`change_traffic`): weights
  other than those its previous step set mean someone else moved traffic, and it stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TypeVar

from cdlib.engine.errors import CdlibError
from cdlib.release.state import Location, app_key, store_for
from cdlib.state import StateError, lost
from cdlib.traffic.base import Router

_T = TypeVar("_T")

#: Seconds a rollback waits for a release's router call in flight to end.
TRAFFIC_LOCK_TIMEOUT = 60.0


class Interrupted(CdlibError):
    """The release was stopped from outside; traffic was left as found."""


def _marker(app: str, release_id: str) -> str:
    return app_key(app, "interrupt", f"{release_id}.json")


def request(app: str, release_id: str, *, by: str, reason: str, state_dir: Location = None) -> None:
    """Ask the running release ``release_id`` to stop where it is (written whole)."""
    store_for(state_dir).put_json(
        _marker(app, release_id), {"by": by, "reason": reason, "at": time.time()}
    )


def requested(app: str, release_id: str, *, state_dir: Location = None) -> str | None:
    """Why the release was asked to stop (``None`` when it was not)."""
    try:
        data = store_for(state_dir).get_json(_marker(app, release_id))
    except ValueError:
        # A damaged marker still means someone asked to stop.
        return "interrupted (unreadable interrupt marker)"
    if data is None:
        return None
    if not isinstance(data, dict):
        return "interrupted"
    by = f" by {data['by']}" if isinstance(data.get("by"), str) and data["by"] else ""
    return f"{data.get('reason') or 'interrupted'}{by}"


def check(app: str, release_id: str, *, state_dir: Location = None) -> None:
    """Raise :class:`Interrupted` when the release was asked to stop, or lost its lock."""
    gone = lost(release_id)
    if gone is not None:
        raise Interrupted(f"release lock lost: {gone}; traffic left as it is")
    why = requested(app, release_id, state_dir=state_dir)
    if why is not None:
        raise Interrupted(f"release interrupted: {why}; traffic left as it is")


@contextmanager
def traffic_lock(
    app: str, *, state_dir: Location = None, timeout: float = TRAFFIC_LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold the app's traffic lock (local: ``flock``, released by the kernel if the
    process dies; S3: a lock object under a lease)."""
    store = store_for(state_dir)
    key = app_key(app, "traffic.lock")
    with ExitStack() as stack:
        try:
            stack.enter_context(store.mutex(key, timeout=timeout))
        except StateError as exc:
            raise CdlibError(f"traffic lock of {app!r}: {exc}") from None
        yield


def change_traffic(
    app: str,
    release_id: str,
    router: Router,
    apply: Callable[[], _T],
    *,
    expected: Mapping[str, int] | None,
    state_dir: Location = None,
) -> _T:
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
