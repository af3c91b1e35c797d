"""Delivery metrics on a history of known releases equal hand-computed values."""

from __future__ import annotations

import pytest

from cdlib.dashboard.metrics import DAY, delivery_metrics
from cdlib.release.history import ReleaseRecord

NOW = 1_800_000_000.0


def _rec(
    app: str,
    rid: str,
    started: float,
    outcome: str,
    took: float | None,
    strategy: str = "canary",
    environment: str | None = None,
) -> ReleaseRecord:
    return ReleaseRecord(
        app,
        "1.0",
        strategy,
        id=rid,
        started=started,
        finished=None if took is None else started + took,
        outcome=outcome,
        environment=environment,
    )


def history() -> list[ReleaseRecord]:
    return [
        _rec("web", "G", NOW - 20 * DAY, "failed", 10),  # before the window
        _rec("web", "A", NOW - 9 * DAY, "succeeded", 600),
        _rec("web", "B", NOW - 8 * DAY, "failed", 300),
        _rec("web", "C", NOW - 8 * DAY + 3600, "succeeded", 1200),  # restores B
        _rec("web", "D", NOW - 5 * DAY, "rolled_back", 100),
        _rec("web", "R", NOW - 5 * DAY + 7200, "succeeded", 10, strategy="rollback"),  # D
        _rec("web", "E", NOW - 2 * DAY, "aborted", 50),  # never restored
        _rec("web", "F", NOW - 3600, "running", None),  # not finished: not counted
        _rec("api", "H", NOW - 3 * DAY, "succeeded", 20),
        _rec("api", "I", NOW - 3 * DAY + 60, "failed", 30),
        _rec("api", "J", NOW - 1 * DAY, "succeeded", 40),  # restores I (not web's)
    ]


def test_delivery_metrics_of_a_known_history_equal_hand_computed_values() -> None:
    m = delivery_metrics(reversed(history()), now=NOW, days=10)
    # Releases: A B C D E (web) and H I J (api); G is older, F runs, R is a rollback.
    assert m.releases == 8
    assert m.releases_per_day == pytest.approx(0.8)
    assert m.failed == 4  # B, D, E, I
    assert m.change_failure_rate == pytest.approx(0.5)
    # B: C finished 3600 + 1200 s after B started; D: the rollback R finished 7200 + 10 s
    # after; I: J finished 2 days - 60 s + 40 s after; E was never restored.
    assert m.restore_times == (4800.0, 7210.0, 2 * DAY - 20)
    assert m.time_to_restore == pytest.approx(7210.0)  # the median
    assert m.unrestored == 1


def test_per_app_and_environment() -> None:
    web = [r for r in history() if r.app == "web"]
    m = delivery_metrics(web, now=NOW, days=10)
    assert (m.releases, m.failed, m.unrestored) == (5, 3, 1)
    assert m.releases_per_day == pytest.approx(0.5)
    assert m.change_failure_rate == pytest.approx(0.6)
    assert m.time_to_restore == pytest.approx((4800 + 7210) / 2)
    # A success in another environment does not restore production.
    recs = [
        _rec("web", "P", NOW - DAY, "failed", 10, environment="production"),
        _rec("web", "S", NOW - DAY + 100, "succeeded", 10, environment="staging"),
    ]
    m = delivery_metrics(recs, now=NOW, days=1)
    assert (m.releases, m.failed, m.time_to_restore, m.unrestored) == (2, 1, None, 1)


def test_empty_history_and_bad_window() -> None:
    m = delivery_metrics([], now=NOW)
    assert (m.releases, m.releases_per_day, m.change_failure_rate, m.time_to_restore) == (
        0,
        0.0,
        None,
        None,
    )
    with pytest.raises(ValueError, match="positive"):
        delivery_metrics([], now=NOW, days=0)
