"""Delivery metrics computed from release history: a pure function of records and a time.

The definitions (also in docs/observing.md):

- A *release* is a history record whose strategy is not ``rollback`` (a rollback
  restores; it is not a change), that has finished (outcome not ``running``) and that
  started within the window: the ``days`` days up to ``now``.
- A *failed* release is one whose outcome is not ``succeeded``: ``failed``,
  ``rolled_back`` (rolled back by itself or later by ``cdlib rollback``), ``aborted`` or
  ``interrupted``.
- **Releases per day**: the number of releases divided by ``days``.
- **Change failure rate**: failed releases divided by releases (``None`` without any).
- **Time to restore** of a failed release: from its start to the finish of the first
  record of the same app and environment that started after it and succeeded (a later
  release or a ``cdlib rollback``), when there is one by ``now``; the metric is the
  median over the failed releases of the window that were restored (``None`` without
  any); ``unrestored`` counts the others.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from cdlib.release.history import RUNNING, SUCCEEDED, ReleaseRecord

__all__ = ["DeliveryMetrics", "delivery_metrics"]

DAY = 86400.0


@dataclass(frozen=True)
class DeliveryMetrics:
    """Delivery metrics over a window of ``days`` days ending at ``until`` (epoch)."""

    days: float
    until: float
    releases: int
    failed: int
    releases_per_day: float
    change_failure_rate: float | None
    #: Median seconds from a failed release's start to its restoration.
    time_to_restore: float | None
    #: Each restored failure's time to restore, in the order the failures started.
    restore_times: tuple[float, ...]
    unrestored: int

    def to_json(self) -> dict[str, object]:
        """Plain dict (for the dashboard's JSON)."""
        return {
            "days": self.days,
            "until": self.until,
            "releases": self.releases,
            "failed": self.failed,
            "releases_per_day": self.releases_per_day,
            "change_failure_rate": self.change_failure_rate,
            "time_to_restore": self.time_to_restore,
            "restore_times": list(self.restore_times),
            "unrestored": self.unrestored,
        }


def delivery_metrics(
    records: Iterable[ReleaseRecord], *, now: float, days: float = 30.0
) -> DeliveryMetrics:
    """The metrics of ``records`` (any apps, any order) over the ``days`` up to ``now``."""
    if not days > 0:
        raise ValueError(f"the metrics window must be a positive number of days, got {days!r}")
    recs = sorted(records, key=lambda r: (r.started, r.id))
    start = now - days * DAY
    releases = [
        r
        for r in recs
        if r.strategy != "rollback" and r.outcome != RUNNING and start <= r.started <= now
    ]
    failures = [r for r in releases if r.outcome != SUCCEEDED]
    restore: list[float] = []
    for f in failures:
        fix = next(
            (
                r
                for r in recs
                if r.app == f.app
                and r.environment == f.environment
                and r is not f
                and r.started >= f.started
                and r.outcome == SUCCEEDED
                and r.finished is not None
                and r.finished <= now
            ),
            None,
        )
        if fix is not None and fix.finished is not None:
            restore.append(fix.finished - f.started)
    return DeliveryMetrics(
        days=days,
        until=now,
        releases=len(releases),
        failed=len(failures),
        releases_per_day=len(releases) / days,
        change_failure_rate=len(failures) / len(releases) if releases else None,
        time_to_restore=statistics.median(restore) if restore else None,
        restore_times=tuple(restore),
        unrestored=len(failures) - len(restore),
    )
