"""Release state that survives damage and concurrent operators: history records, the
release lock, manual traffic changes and a rollback during a running release."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdlib.cli.main import main
from cdlib.engine.errors import CdlibError
from cdlib.lockowner import this_machine
from cdlib.release import (
    Canary,
    CanaryStep,
    History,
    HookEvent,
    Hooks,
    Rolling,
    interrupt,
    rollback,
    routers,
)
from cdlib.release.history import SUCCEEDED, Recorder, ReleaseRecord
from cdlib.release.lock import (
    CorruptLock,
    LockHeld,
    LockOwner,
    ReleaseLock,
    break_lock,
    read_owner,
)
from cdlib.release.ops import status
from cdlib.traffic.base import HealthReport, Router, RouterState, Target, TargetHealth

# -- a router in memory, rebuilt by name from its recorded spec ---------------------
_ROUTERS: dict[str, MemoryRouter] = {}


class MemoryRouter(Router):
    """Weights in a dict; every change is logged."""

    def __init__(self) -> None:
        self.weights = {"blue": 100, "green": 0}
        self.members: dict[str, set[Target]] = {"blue": set(), "green": set()}
        self.tags: dict[str, str] = {}
        self.changes: list[dict[str, int]] = []

    @property
    def groups(self) -> tuple[str, ...]:
        return ("blue", "green")

    def state(self) -> RouterState:
        return RouterState.from_weights(self.weights)

    def switch(self, to_group: str) -> RouterState:
        return self.set_weights({to_group: 100})

    def set_weights(self, weights: Mapping[str, int], *, sticky: bool = False) -> RouterState:
        self.weights = {g: int(weights.get(g, 0)) for g in self.groups}
        self.changes.append(dict(self.weights))
        return self.state()

    def register(self, group: str, targets: Iterable[Target]) -> None:
        self.members[group] |= set(targets)

    def deregister(self, group: str, targets: Iterable[Target]) -> None:
        self.members[group] -= set(targets)

    def drain(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        return None

    def targets(self, group: str) -> tuple[Target, ...]:
        return tuple(sorted(self.members[group]))

    def health(self, group: str) -> HealthReport:
        return HealthReport(group, tuple(TargetHealth(t, True, "UP") for t in self.members[group]))

    def wait_healthy(
        self, group: str, *, timeout: float = 60.0, interval: float = 0.5
    ) -> HealthReport:
        return self.health(group)

    def tag_release(self, group: str, version: str) -> None:
        self.tags[group] = version

    def tagged_release(self, group: str) -> str | None:
        return self.tags.get(group)


@dataclass
class MemorySpec(routers.RouterSpec):
    name: str
    kind = "memory"

    def build(self) -> Router:
        return _ROUTERS[self.name]


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryRouter]:
    r = _ROUTERS["r"] = MemoryRouter()
    r.tags["blue"] = "1.0.0"
    yield r
    _ROUTERS.clear()


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    local = {"ansible_connection": "local", "ansible_host": "127.0.0.1"}
    inv = {
        "all": {
            "vars": local,
            "children": {"blue": {"hosts": {"blue1": {}}}, "green": {"hosts": {"green1": {}}}},
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return str(path)


def _record(sd: str, version: str, **kw: Any) -> ReleaseRecord:
    rec = ReleaseRecord("app", version, "blue/green", **kw)
    Recorder(History("app", state_dir=sd), rec).finish(SUCCEEDED)
    return rec


# -- item 6: history records ---------------------------------------------------------
def test_bad_and_newer_history_records_are_skipped_and_named(tmp_path: Path) -> None:
    sd = str(tmp_path)
    good = _record(sd, "1.0.0")
    hist_dir = tmp_path / "app" / "history"
    newer = json.loads((hist_dir / f"{good.id}.json").read_text())
    newer.update(id="20990101T000000-aaaaaa", version="2.0.0", started=good.started + 1)
    newer["future_field"] = {"x": 1}
    newer["steps"] = [{"name": "deploy", "started": 1.0, "new_step_field": True}]
    (hist_dir / "20990101T000000-aaaaaa.json").write_text(json.dumps(newer))
    broken = hist_dir / "20990102T000000-bbbbbb.json"
    broken.write_text('{\n  "app": "app",\n  "version": \n')
    mistyped = hist_dir / "20990103T000000-cccccc.json"
    mistyped.write_text(json.dumps({**newer, "started": "yesterday"}))
    (hist_dir / "20990104T000000-dddddd.json").write_text("")

    warnings: list[str] = []
    h = History("app", state_dir=sd, warn=warnings.append)
    recs = h.all()
    assert [r.version for r in recs] == ["1.0.0", "2.0.0"]
    assert recs[1].steps[0].name == "deploy"  # unknown fields of a newer cdlib ignored
    assert len(warnings) == 3 and len(h.skipped) == 3
    assert f"{broken}:4:1:" in warnings[0] and "invalid JSON" in warnings[0]
    assert str(mistyped) in warnings[1] and "'started'" in warnings[1]
    assert "empty file" in warnings[2]


def test_cli_status_history_rollback_work_past_a_corrupt_record(
    tmp_path: Path, router: MemoryRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    sd = str(tmp_path)
    router.weights = {"blue": 0, "green": 100}
    _record(
        sd,
        "2.0.0",
        router={"kind": "memory", "name": "r"},
        previous_group="blue",
        new_group="green",
    )
    bad = tmp_path / "app" / "history" / "20990101T000000-ffffff.json"
    bad.write_text("{not json")
    assert main(["history", "app", "--state-dir", sd]) == 0
    out = capsys.readouterr()
    assert "2.0.0" in out.out and f"{bad}:1:2" in out.err and "warning" in out.err
    assert main(["status", "app", "--state-dir", sd]) == 0
    out = capsys.readouterr()
    assert "live=green" in out.out and str(bad) in out.err
    assert main(["status", "app", "--state-dir", sd, "--format", "json"]) == 0
    assert str(bad) in json.loads(capsys.readouterr().out)["skipped_records"][0]
    assert main(["rollback", "app", "--state-dir", sd]) == 0
    out = capsys.readouterr()
    assert "traffic -> blue" in out.out and router.weights == {"blue": 100, "green": 0}
    # The bad file's name is a later id than the release acted on: say so.
    assert str(bad) in out.err and "may be newer" in out.err


# -- item 7: the release lock ----------------------------------------------------------
def test_lock_appears_whole_or_not_at_all_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    lock = ReleaseLock("app", "r1", state_dir=str(tmp_path))
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", full)  # the write of the temp file fails
        with pytest.raises(OSError, match="No space"):
            lock.acquire()
    assert not lock.path.exists() and os.listdir(tmp_path / "app") == []
    lock.acquire()
    owner = read_owner(lock.path)
    assert owner is not None and owner.token == "r1"
    lock.release()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "empty file"),
        ('{"user": "a", "machine"', "invalid JSON"),
        ('{"user": "a", "machine": "m", "pid": "abc", "since": 1, "release_id": "r"}', "'pid'"),
        ('{"user": "a", "machine": "m", "since": 1, "release_id": "r"}', "'pid' is missing"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_corrupt_lock_is_named_reported_and_breakable(
    tmp_path: Path, content: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sd = str(tmp_path)
    lock = ReleaseLock("app", "r1", state_dir=sd)
    lock.path.write_text(content)
    with pytest.raises(CorruptLock, match=why):
        read_owner(lock.path)
    with pytest.raises(LockHeld) as err:
        lock.acquire()
    assert str(lock.path) in str(err.value) and "cdlib unlock app" in str(err.value)
    st = status("app", state_dir=sd)
    assert st.lock_corrupt is not None and str(lock.path) in st.lock_corrupt
    assert main(["status", "app", "--state-dir", sd]) == 0
    assert f"lock: CORRUPT: {lock.path}" in capsys.readouterr().out
    assert main(["unlock", "app", "--state-dir", sd]) == 0  # no --force needed
    assert not lock.path.exists()
    lock.acquire()
    lock.release()


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_OUT)
    return int(proc.stdout)


_OUT: dict[str, Any] = {"capture_output": True, "text": True, "check": True}


def test_pid_zero_negative_or_huge_names_no_run_of_ours() -> None:
    here = this_machine()
    ident = {"boot_id": here.boot_id, "machine_id": here.machine_id, "pidns": here.pidns}
    # No single process: nothing proves its run is gone (break it with --force).
    for pid in (0, -1):
        assert not LockOwner("u", here.hostname, pid, 0.0, "r", **ident).is_stale()
    assert LockOwner("u", here.hostname, 2**63, 0.0, "r", **ident).is_stale()
    assert not LockOwner("u", here.hostname, os.getppid(), 0.0, "r", **ident).is_stale()
    assert not LockOwner("u", "other-machine", _dead_pid(), 0.0, "r").is_stale()


def test_release_lock_from_another_pid_namespace_is_not_stale(tmp_path: Path) -> None:
    # Same hostname, a pid that is dead here: a run in another container or pid namespace
    # (or an older cdlib without identity) may still be going, so nothing breaks it.
    here = this_machine()
    lock = ReleaseLock("app", "mine", state_dir=str(tmp_path))
    for pidns in ("pid:[1]", ""):
        other = LockOwner(
            "u", here.hostname, _dead_pid(), 1.0, "theirs",
            boot_id=here.boot_id, machine_id=here.machine_id, pidns=pidns,
        )  # fmt: skip
        lock.path.write_text(other.to_json())
        with pytest.raises(LockHeld) as err:
            lock.acquire(break_stale=True)
        assert "STALE" not in str(err.value) and "release theirs" in str(err.value)
        with pytest.raises(CdlibError, match="may still be running"):
            break_lock("app", state_dir=str(tmp_path))
    # The same holder in our own pid namespace is provably gone.
    gone = dataclasses.replace(other, pidns=here.pidns)
    lock.path.write_text(gone.to_json())
    assert read_owner(lock.path) == gone and gone.is_stale()
    lock.acquire(break_stale=True)
    lock.release()


def test_release_lock_files_of_older_versions_load(tmp_path: Path) -> None:
    lock = ReleaseLock("app", "mine", state_dir=str(tmp_path))
    lock.path.write_text(
        '{"user": "u", "machine": "ci", "pid": 5, "since": 1767225600.0, "release_id": "r"}'
    )
    assert read_owner(lock.path) == LockOwner("u", "ci", 5, 1767225600.0, "r")
    # What this version writes, older versions can read (their field names are there).
    lock.path.unlink()
    lock.acquire()
    data = json.loads(lock.path.read_text())
    assert {"machine", "controlhost", "release_id", "token"} <= data.keys()
    assert isinstance(data["since"], float) and data["release_id"] == "mine"
    lock.release()


def test_rollback_breaks_a_corrupt_lock(tmp_path: Path, router: MemoryRouter) -> None:
    sd = str(tmp_path)
    router.weights = {"blue": 0, "green": 100}
    _record(sd, "2", router={"kind": "memory", "name": "r"}, previous_group="blue")
    (tmp_path / "app" / "release.lock").write_text("")
    rollback("app", state_dir=sd)
    assert router.weights == {"blue": 100, "green": 0}


# -- item 11: manual changes and rollback during a release ------------------------------
def _canary(sd: str, hooks: Hooks, pause: float = 0.6) -> Canary:
    return Canary(
        app="app",
        version="2.0.0",
        router=MemorySpec("r"),
        state_dir=sd,
        port=8080,
        hooks=hooks,
        steps=[CanaryStep(10, pause=pause, analyse=False), CanaryStep(50, analyse=False), 100],
    )


def test_canary_stops_when_weights_were_changed_by_hand(
    tmp_path: Path, router: MemoryRouter, inventory: str
) -> None:
    sd = str(tmp_path / "state")

    def operator(ev: HookEvent) -> None:
        if ev.weights.get("green") == 10:  # during the pause after the 10% step
            router.weights = {"blue": 95, "green": 5}

    res = _canary(sd, Hooks(after_shift=operator)).run(inventory)
    assert not res.ok
    assert router.weights == {"blue": 95, "green": 5}  # left as the operator set it
    assert router.changes == [{"blue": 90, "green": 10}]  # nothing after the manual change
    rec = History("app", state_dir=sd).latest()
    assert rec is not None and rec.outcome == "interrupted"
    assert "expected weights {'blue': 90, 'green': 10}" in rec.reason
    assert "found {'blue': 95, 'green': 5}" in rec.reason
    msgs = [r.msg for r in res.results if r.status.value == "failed"]
    assert any("changed outside this release" in m for m in msgs)


def test_rollback_from_another_operator_interrupts_a_running_canary(
    tmp_path: Path, router: MemoryRouter, inventory: str
) -> None:
    sd = str(tmp_path / "state")
    done: list[ReleaseRecord] = []

    def other_shell(ev: HookEvent) -> None:
        if ev.weights.get("green") == 10:
            # The release holds its lock (this very process is alive): not stale.
            done.append(rollback("app", state_dir=sd))

    res = _canary(sd, Hooks(after_shift=other_shell)).run(inventory)
    assert not res.ok and done
    assert router.weights == {"blue": 100, "green": 0}
    assert router.changes == [{"blue": 90, "green": 10}, {"blue": 100, "green": 0}]
    recs = {r.strategy: r for r in History("app", state_dir=sd).all()}
    assert recs["canary"].outcome == "interrupted"
    assert "'cdlib rollback'" in recs["canary"].reason and done[0].id in recs["canary"].reason
    assert recs["rollback"].outcome == "succeeded"
    assert f"interrupted running release {recs['canary'].id}" in recs["rollback"].reason
    assert status("app", state_dir=sd).lock_owner is None  # the release let go of it


def test_a_second_rollback_does_not_interrupt_a_running_rollback(
    tmp_path: Path, router: MemoryRouter
) -> None:
    sd = str(tmp_path)
    router.weights = {"blue": 0, "green": 100}
    _record(sd, "2", router={"kind": "memory", "name": "r"}, previous_group="blue")
    hist = History("app", state_dir=sd)
    running = ReleaseRecord(
        "app", "1", "rollback", router={"kind": "memory", "name": "r"}, previous_group="green"
    )
    Recorder(hist, running)
    lock = ReleaseLock("app", running.id, state_dir=sd)
    lock.acquire()
    try:
        with pytest.raises(LockHeld, match="held by"):
            rollback("app", state_dir=sd)
    finally:
        lock.release()
    assert router.changes == []


def test_rollback_from_another_operator_stops_a_rolling_release_before_its_next_change(
    tmp_path: Path, router: MemoryRouter, inventory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd = str(tmp_path / "state")
    target = Target("127.0.0.1", 8080)
    router.register("blue", [target])
    deregister = router.deregister
    done: list[str] = []

    def then_rollback(group: str, targets: Iterable[Target]) -> None:
        deregister(group, targets)
        # While batch 1 is out of the router, another shell runs 'cdlib rollback': its
        # first act is the interrupt marker (its switch then waits for the traffic lock).
        running = History("app", state_dir=sd).latest()
        assert running is not None
        interrupt.request("app", running.id, by="'cdlib rollback'", reason="rollback", state_dir=sd)
        done.append(running.id)

    monkeypatch.setattr(router, "deregister", then_rollback)
    res = Rolling(
        app="app", version="2.0.0", router=MemorySpec("r"), state_dir=sd, port=8080,
        group="blue",
    ).run(inventory)  # fmt: skip
    assert not res.ok and done
    # Never registered again after the rollback (the release's next traffic change).
    assert router.members["blue"] == set()
    rec = next(r for r in History("app", state_dir=sd).all() if r.strategy == "rolling")
    assert rec.outcome == "interrupted" and "'cdlib rollback'" in rec.reason


def test_router_release_is_the_deprecated_name_of_tagged_release() -> None:
    r = MemoryRouter()
    r.tag_release("green", "2.0.0")
    assert r.tagged_release("green") == r.release("green") == "2.0.0"
    assert r.release("blue") is None
