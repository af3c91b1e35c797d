"""What the dashboard shows, as plain JSON data read from the state store and flag stores.

One :func:`snapshot` feeds both the JSON endpoint and the HTML page, so the two never
disagree. Everything here reads; nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdlib.dashboard.metrics import delivery_metrics
from cdlib.errors import CdlibError
from cdlib.flags import FlagStore
from cdlib.release.history import SUCCEEDED, History, ReleaseRecord
from cdlib.release.ops import AppStatus, status
from cdlib.release.sampling import Sample
from cdlib.release.state import app_name_ok
from cdlib.report.html import is_gate, weight_points
from cdlib.state import Store

#: Samples of the release in progress sent to the page (the newest).
_SAMPLES = 400

__all__ = ["Sources", "app_names", "current_release", "flag_rows", "snapshot"]


@dataclass
class Sources:
    """Where the dashboard reads: the state store, flag stores, and how much to show."""

    store: Store
    flags: Sequence[FlagStore] = ()
    #: Releases listed per app (newest first).
    history: int = 20
    #: Days of history the delivery metrics cover.
    days: float = 30.0
    #: Whether to read each app's router (live weights and versions) or trust history.
    read_router: bool = True
    warn: Callable[[str], None] | None = field(default=None, repr=False)


def app_names(store: Store) -> list[str]:
    """Apps with a release history in ``store``, sorted."""
    return sorted(a for a in store.children("") if app_name_ok(a) and store.names(f"{a}/history"))


def snapshot(src: Sources, *, now: float | None = None) -> dict[str, Any]:
    """Every app (versions, the release in progress, history, metrics) and every flag."""
    now = time.time() if now is None else now
    apps, records = [], []
    for name in app_names(src.store):
        recs, app = _app(src, name, now)
        records += recs
        apps.append(app)
    return {
        "state": src.store.location,
        "generated": now,
        "apps": apps,
        "metrics": delivery_metrics(records, now=now, days=src.days).to_json(),
        "flags": [flag_rows(s) for s in src.flags],
    }


def _app(src: Sources, name: str, now: float) -> tuple[list[ReleaseRecord], dict[str, Any]]:
    hist = History(name, state_dir=src.store, warn=src.warn)
    recs = hist.all()
    skipped = [str(b) for b in hist.skipped]
    st = status(name, state_dir=src.store, read_router=src.read_router)
    latest = recs[-1] if recs else None
    cur = current_release(latest) if latest is not None and latest.unfinished else None
    return recs, {
        "app": name,
        **_versions(st, recs),
        "lock": st.lock_owner,
        "lock_stale": st.lock_stale,
        "router_error": st.router_error,
        "current": cur,
        "history": [_row(r) for r in reversed(recs[-src.history :])],
        "metrics": delivery_metrics(recs, now=now, days=src.days).to_json(),
        "skipped": skipped,
    }


def _versions(st: AppStatus, recs: Sequence[ReleaseRecord]) -> dict[str, Any]:
    """Live and idle groups with their versions: read from the router when it answered,
    else what history says the last good release left."""
    if st.live is not None or st.weights:
        # During a canary no group has all traffic: the one with the most is the live one.
        live = st.live or max(sorted(st.weights), key=lambda g: st.weights[g])
        return {
            "live": {"group": live, "version": st.releases.get(live)},
            "idle": [
                {"group": g, "version": v} for g, v in sorted(st.releases.items()) if g != live
            ],
            "weights": dict(st.weights),
            "source": "router",
        }
    good = next((r for r in reversed(recs) if r.outcome == SUCCEEDED), None)
    if good is None:
        return {"live": None, "idle": [], "weights": {}, "source": "history"}
    idle = (
        [{"group": good.previous_group, "version": good.previous_version}]
        if good.previous_group
        else []
    )
    return {
        "live": {"group": good.new_group, "version": good.version},
        "idle": idle,
        "weights": dict(good.weights),
        "source": "history",
    }


def current_release(rec: ReleaseRecord) -> dict[str, Any]:
    """The release in progress: step N of M, the step it is at, weights, latest samples."""
    n, m = _progress(rec.plan, [s.name for s in rec.steps])
    step = rec.steps[-1] if rec.steps else None
    waiting = step.name if step is not None and step.duration is None and is_gate(step) else None
    samples = [s for s in (Sample.from_json(d) for d in rec.samples) if s is not None]
    latest = {s.metric: s for s in samples}
    return {
        "id": rec.id,
        "version": rec.version,
        "strategy": rec.strategy,
        "environment": rec.environment,
        "who": f"{rec.user}@{rec.machine}",
        "started": rec.started,
        "step": n,
        "of": m,
        "step_name": step.name if step is not None else None,
        "step_started": step.started if step is not None else None,
        "waiting_at": waiting,
        "weights": dict(rec.weights),
        "previous_group": rec.previous_group,
        "new_group": rec.new_group,
        "analysis": [s.to_json() for s in latest.values()],
        # The latest samples only: enough for the charts, small enough to poll.
        "samples": [s.to_json() for s in samples[-_SAMPLES:]],
        # Weight of each group over time, seconds since the start (as the report draws it).
        "weight_series": {
            g: pts[-_SAMPLES:] for g, pts in weight_points(rec, samples, rec.started).items()
        },
        "steps": [
            {"name": s.name, "outcome": s.outcome, "duration": s.duration, "detail": s.detail}
            for s in rec.steps
        ],
    }


def _progress(plan: Sequence[str], names: Iterable[str]) -> tuple[int, int | None]:
    """(steps of the plan reached, steps planned); without a plan, (steps so far, None)."""
    names = list(names)
    if not plan:
        return len(names), None
    reached = 0
    for i, label in enumerate(plan, 1):
        # "traffic 10%" names "traffic 10% -> green", never "traffic 100% -> green".
        if any(n == label or n.startswith(label + " ") for n in names):
            reached = i
    return reached, len(plan)


def _row(r: ReleaseRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "version": r.version,
        "strategy": r.strategy,
        "environment": r.environment,
        "outcome": r.outcome,
        "started": r.started,
        "finished": r.finished,
        "who": f"{r.user}@{r.machine}",
        "reason": r.reason,
        "approvals": [
            {"gate": str(a.get("gate", "")), "how": str(a.get("how", "")), "by": str(a.get("by"))}
            for a in r.approvals
            if isinstance(a, Mapping)
        ],
    }


def flag_rows(store: FlagStore) -> dict[str, Any]:
    """The flags of one store, each with its state, default and rollout percentages."""
    try:
        doc = store.read()
    except CdlibError as exc:
        return {"source": store.name, "error": str(exc), "flags": []}
    rows = []
    for key, flag in doc.flags.items():
        if not isinstance(flag, dict):
            continue
        variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
        rows.append(
            {
                "key": str(key),
                "state": str(flag.get("state", "")),
                "default": str(flag.get("defaultVariant", "")),
                "variants": sorted(str(v) for v in (variants or {})),
                "rollout": rollout(flag.get("targeting")),
                "targeting": bool(flag.get("targeting")),
            }
        )
    return {"source": store.name, "error": None, "flags": rows}


def rollout(targeting: Any) -> list[dict[str, Any]] | None:
    """Percent per variant of the first ``fractional`` rule in ``targeting``; ``None``
    when it has none. Buckets without a weight weigh 1, as in flagd."""
    node = _fractional(targeting)
    if node is None:
        return None
    buckets = [b for b in node if isinstance(b, list) and b and isinstance(b[0], str)]
    weights = [(b[0], b[1] if len(b) > 1 and isinstance(b[1], int | float) else 1) for b in buckets]
    total = sum(w for _, w in weights)
    return [
        {"variant": v, "percent": round(w * 100 / total, 1) if total else 0.0} for v, w in weights
    ]


def _fractional(node: Any) -> list[Any] | None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "fractional" and isinstance(v, list):
                return v
            found = _fractional(v)
            if found is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _fractional(v)
            if found is not None:
                return found
    return None
