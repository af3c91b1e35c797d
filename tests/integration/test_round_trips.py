"""Round trips per task of the benchmark deployment (bench/deploy_cdlib.py) on the fleet.

Latency is what a deployment tool pays per round trip (a command or a file transfer), so
these budgets are asserted as counts: a regression fails here instead of showing up as a
slower number in bench/RESULTS.md.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import cdlib
from bench.build_tarball import build
from bench.run import write_inventories
from cdlib import CallbackSink
from tests.fleet import Fleet

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "bench" / "deploy_cdlib.py"
STEPS = REPO / "bench" / "deploy_steps_cdlib.py"

pytestmark = pytest.mark.fleet


class _Counter:
    """Connections that remember, per host and task, how many round trips the task cost."""

    def __init__(self) -> None:
        self.conns: dict[str, cdlib.api.Connection] = {}
        self.seen: dict[str, int] = defaultdict(int)
        self.per_task: dict[str, dict[str, int]] = defaultdict(dict)
        self._lock = threading.Lock()

    def factory(self, host: cdlib.Host) -> cdlib.api.Connection:
        c = cdlib.api.connection_for(host)
        with self._lock:
            self.conns[host.name] = c
        return c

    def event(self, ev: dict[str, Any]) -> None:
        # Events of one host come from that host's worker, right after its task ran.
        if ev.get("event") != "task_result":
            return
        host = str(ev["host"])
        now = self.conns[host].stats.round_trips
        self.per_task[host][str(ev["task"])] = now - self.seen[host]
        self.seen[host] = now

    def run(self, inventory: Path, playbook: Path = DEPLOY) -> cdlib.RunResult:
        return cdlib.run(
            playbook,
            inventory,
            forks=10,
            connection_factory=self.factory,
            sinks=[CallbackSink(self.event)],
        )


@pytest.fixture
def bench_inventory(fleet: Fleet, fleet_inventory: Path, tmp_path: Path) -> Path:
    """The benchmark's cdlib inventory for the (freshly reset) fleet."""
    tarball = build("1.0.0", tmp_path / "dist")
    return write_inventories(fleet, fleet.n, tarball, tmp_path / "inv")["cdlib"]


def test_no_change_run_costs_at_most_one_round_trip_per_task(
    fleet: Fleet, bench_inventory: Path
) -> None:
    first = _Counter()
    res = first.run(bench_inventory)
    assert res.ok, [(r.host, r.task, r.msg) for r in res.results if not r.ok]
    assert len(res.changed()) == 7 * fleet.n  # every task but the check changed something
    for host, tasks in first.per_task.items():
        # A change costs its command (the tarball travels in the copy's stdin), and the
        # tarball goes over once and only once.
        assert all(n <= 2 for n in tasks.values()), (host, tasks)
        assert first.conns[host].stats.puts <= 1, host
        # Batched: the fact read; the directories and the upload in one command (the
        # unpack plans from the uploaded archive's checksum, so it waits for them); the
        # unpack, template, link and version file in one more, which also re-reads the
        # check's prefetched output. 2 plus the one change that waits for another.
        assert sum(tasks.values()) <= 3, (host, tasks)

    again = _Counter()
    res = again.run(bench_inventory)
    assert res.ok and res.changed() == set()
    assert set(again.per_task) == {h.name for h in fleet.hosts}
    for host, tasks in again.per_task.items():
        assert len(tasks) == 8
        assert all(n <= 1 for n in tasks.values()), (host, tasks)
        assert sum(tasks.values()) <= 3, (host, tasks)
        stats = again.conns[host].stats
        assert stats.connects == 1 and stats.puts == 0 and stats.gets == 0


def test_many_small_steps_cost_two_round_trips_first_and_one_after(
    fleet: Fleet, bench_inventory: Path
) -> None:
    """bench/deploy_steps_cdlib.py: 28 independent file-level changes and a check."""
    first = _Counter()
    res = first.run(bench_inventory, STEPS)
    assert res.ok, [(r.host, r.task, r.msg) for r in res.results if not r.ok]
    assert len(res.changed()) == 28 * fleet.n
    for host, tasks in first.per_task.items():
        assert len(tasks) == 29, (host, tasks)
        # The fact read, then every change in one command (which re-reads the check's
        # prefetched output): no change here has to run alone.
        assert sum(tasks.values()) <= 2, (host, tasks)
        assert first.conns[host].stats.puts == 0, host

    again = _Counter()
    res = again.run(bench_inventory, STEPS)
    assert res.ok and res.changed() == set()
    for host, tasks in again.per_task.items():
        assert len(tasks) == 29
        assert sum(tasks.values()) <= 1, (host, tasks)
