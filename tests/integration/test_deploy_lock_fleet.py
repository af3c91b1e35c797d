"""The host deploy lock between control runs with the same hostname (security item 8).

A run in another pid namespace (a container, ``unshare --pid``) sees the same hostname but
not our pids: it must wait for our lock, not break it as stale. Canned lock files stand for
a run on another machine, on this machine before a reboot, and an older cdlib.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import cdlib
from cdlib import Play, Status, tasks
from cdlib.install.lock import deploy_lock, this_machine
from tests.fleet import Fleet
from tests.sample_app import build_release

pytestmark = pytest.mark.fleet

ROOT = "/srv/sampleapp"
LOCK = f"{ROOT}/.cdlib/deploy.lock"
REPO = Path(__file__).resolve().parents[2]

# Runs in a new pid namespace: the release of 1.1.0 must find the lock held, not stale.
CONTENDER = """
import json, os, sys
import cdlib
from cdlib import Play, Status, tasks
play = Play("release", hosts="all")
play.task(tasks.install("sampleapp", "1.1.0", sys.argv[2], lock_timeout=1))
r = cdlib.run(play, sys.argv[1])
print(json.dumps({
    "pid": os.getpid(),
    "ns": os.readlink("/proc/self/ns/pid"),
    "failures": [x.msg for x in r.results if x.status is Status.FAILED],
}))
"""


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sample app tarballs 1.0.0 and 1.1.0."""
    out = tmp_path_factory.mktemp("builds")
    return {v: build_release(v, out) for v in ("1.0.0", "1.1.0")}


def _install(inv: Path, version: str, build: Path, timeout: float = 60) -> cdlib.RunResult:
    play = Play(f"release {version}", hosts="all")
    play.task(tasks.install("sampleapp", version, str(build), lock_timeout=timeout))
    return cdlib.run(play, inv)


def _failures(r: cdlib.RunResult) -> list[str]:
    return [x.msg for x in r.results if x.status is Status.FAILED]


def _one_host(fleet: Fleet, tmp_path: Path, builds: dict[str, Path]) -> Path:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    assert _install(inv, "1.0.0", builds["1.0.0"]).ok
    return inv


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare --pid needs root")
def test_run_in_another_pid_namespace_waits_for_a_live_lock(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path, builds)
    host = cdlib.load_inventory([inv]).hosts["host1"]
    conn = cdlib.api.connection_for(host)
    ctx = SimpleNamespace(conn=conn, host="host1")
    try:
        with deploy_lock(ctx, "sampleapp", LOCK, timeout=5) as held:  # type: ignore[arg-type]
            argv = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c"]
            res = subprocess.run(
                [*argv, CONTENDER, str(inv), str(builds["1.1.0"])],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                check=False,
            )
            assert res.returncode == 0, res.stderr
            out = json.loads(res.stdout.strip().splitlines()[-1])
            # Same hostname, another pid namespace, where our pid does not exist.
            assert out["ns"] != this_machine().pidns
            [msg] = out["failures"]
            assert f"is held by {held.owner.describe()}" in msg
            assert json.loads(fleet.path(1, LOCK).read_text())["token"] == held.owner.token
            assert not fleet.path(1, f"{ROOT}/releases/1.1.0").exists()
    finally:
        conn.close()
    # Freed by its owner, the same install goes through.
    r = _install(inv, "1.1.0", builds["1.1.0"])
    assert r.ok, _failures(r)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.parametrize(
    ("case", "stale"),
    [
        ("other-machine", False),  # same hostname, another boot and machine id
        ("other-pidns", False),  # same machine and boot, another pid namespace
        ("old-format", False),  # written by an older cdlib: no identity, conservative
        ("this-machine", True),  # our boot and pid namespace, process gone
        ("rebooted", True),  # our machine id, an earlier boot
    ],
)
def test_canned_locks_with_our_hostname_and_a_dead_pid(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path], case: str, stale: bool
) -> None:
    inv = _one_host(fleet, tmp_path, builds)
    here = this_machine()
    owner = {
        "user": "bob",
        "controlhost": socket.gethostname(),
        "pid": _dead_pid(),
        "since": "2026-01-02T03:04:05Z",
        "token": "t0k",
        "boot_id": here.boot_id,
        "machine_id": here.machine_id,
        "pidns": here.pidns,
    }
    if case == "other-machine":
        owner.update(boot_id="0" * 32, machine_id="1" * 32)
    elif case == "other-pidns":
        owner.update(pidns="pid:[4026599999]")
    elif case == "old-format":
        for k in ("boot_id", "machine_id", "pidns"):
            del owner[k]
    elif case == "rebooted":
        owner.update(boot_id="0" * 32)
    lock = fleet.path(1, LOCK)
    lock.write_text(json.dumps(owner) + "\n")
    r = _install(inv, "1.1.0", builds["1.1.0"], timeout=0.5)
    installed = fleet.path(1, f"{ROOT}/releases/1.1.0").exists()
    if stale:
        assert r.ok, _failures(r)
        assert installed and not lock.exists()
    else:
        [msg] = _failures(r)
        assert f"held by bob@{socket.gethostname()} pid {owner['pid']}" in msg
        assert not installed
        assert json.loads(lock.read_text())["token"] == "t0k", "a live lock was broken"
