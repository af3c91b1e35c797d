"""Release lock, history, gates and analysis (no routers involved)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdlib.engine.errors import CdlibError
from cdlib.release import gates
from cdlib.release.analysis import Analysis, Thresholds, measure
from cdlib.release.history import SUCCEEDED, History, Recorder, ReleaseRecord
from cdlib.release.lock import LockHeld, ReleaseLock, break_lock


@dataclass
class C:
    requests: int
    errors_5xx: int
    response_time_ms: float | None = None


def test_lock_excludes_and_names_owner(tmp_path: Path) -> None:
    a = ReleaseLock("app", "r1", state_dir=str(tmp_path))
    b = ReleaseLock("app", "r2", state_dir=str(tmp_path))
    a.acquire()
    with pytest.raises(LockHeld) as err:
        b.acquire()
    assert f"pid {os.getpid()}" in str(err.value) and "release r1" in str(err.value)
    assert "STALE" not in str(err.value)
    with pytest.raises(CdlibError, match="may still be running"):
        break_lock("app", state_dir=str(tmp_path))
    a.release()
    b.acquire()
    b.release()


def test_stale_lock_of_a_dead_process_can_be_broken(tmp_path: Path) -> None:
    code = (
        "from cdlib.release.lock import ReleaseLock;"
        f"ReleaseLock('app', 'dead', state_dir={str(tmp_path)!r}).acquire()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # exits holding the lock
    with pytest.raises(LockHeld, match="STALE"):
        ReleaseLock("app", "r3", state_dir=str(tmp_path)).acquire()
    owner = break_lock("app", state_dir=str(tmp_path))
    assert owner.token == "dead"
    ReleaseLock("app", "r3", state_dir=str(tmp_path)).acquire(break_stale=True)


def test_history_records_steps_and_unfinished(tmp_path: Path) -> None:
    h = History("app", state_dir=str(tmp_path))
    rec = Recorder(h, ReleaseRecord("app", "1.1.0", "canary"))
    s = rec.step("deploy")
    rec.end_step(s, SUCCEEDED)
    again = h.latest()
    assert again is not None and again.unfinished and again.steps[0].outcome == SUCCEEDED
    rec.finish(SUCCEEDED)
    assert h.last_good() is not None and not h.all()[0].unfinished


def test_gate_promote_abort_and_timeout(tmp_path: Path) -> None:
    sd = str(tmp_path)
    g = gates.Gate("go", timeout=5, poll=0.01)
    gates.send("app", "r1", gates.PROMOTE, state_dir=sd)
    assert g.wait("app", "r1", state_dir=sd) == "promote"
    gates.send("app", "r1", gates.ABORT, state_dir=sd)
    with pytest.raises(gates.Aborted, match="cdlib abort"):
        g.wait("app", "r1", state_dir=sd)
    quick = gates.Gate("t", timeout=0.05, poll=0.01, on_timeout="continue")
    assert quick.wait("app", "r2", state_dir=sd) == "timeout"
    with pytest.raises(gates.Aborted, match="no approval"):
        gates.Gate("t", timeout=0.05, poll=0.01).wait("app", "r2", state_dir=sd)
    assert gates.Gate(approve=lambda: True).wait("app", "r3", state_dir=sd) == "callback"


def test_analysis_no_data_is_inconclusive_and_errors_fail() -> None:
    t = Thresholds(max_error_rate=0.05, min_requests=10)
    assert measure(C(0, 0), C(5, 0), t).outcome == "inconclusive"
    assert measure(C(100, 0), C(50, 0), t).outcome == "inconclusive"  # counters reset
    assert measure(C(0, 0), C(100, 10), t).outcome == "fail"
    assert measure(C(0, 0), C(100, 1), t).outcome == "pass"
    a = Analysis(t)
    assert a.verdict()[0] == "inconclusive"
    a.add(measure(None, C(100, 1), t))
    assert a.verdict()[0] == "pass"
    a.add_check_failure("health 503")
    assert a.verdict() == ("fail", "smoke checks failed: health 503")
    with pytest.raises(ValueError):
        Thresholds(min_requests=0)


def test_gate_names_who_promoted(tmp_path: Path) -> None:
    sd = str(tmp_path)
    gates.send("app", "r9", gates.PROMOTE, by="alice", state_dir=sd)
    assert gates.Gate("go", timeout=5, poll=0.01).wait("app", "r9", state_dir=sd) == (
        "promote from alice"
    )
