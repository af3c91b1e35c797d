"""Hosts failing in the middle of an install (issue 11) on the real SSH fleet."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import cdlib
from cdlib import Play, Status, tasks
from tests.fleet import Fleet
from tests.sample_app import build_release

pytestmark = pytest.mark.fleet
ROOT = "/srv/faultapp"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fault-builds")
    return {v: build_release(v, out) for v in ("1.0.0", "1.1.0")}


def _play(version: str, build: Path, **kw: object) -> Play:
    play = Play(f"release {version}", hosts="all")
    play.task(tasks.release("faultapp", version, str(build), root=ROOT, **kw))  # type: ignore[arg-type]
    return play


def _current(fleet: Fleet, k: int) -> str:
    return os.path.basename(os.readlink(fleet.path(k, f"{ROOT}/current")))


def test_host_dies_mid_install_others_finish_and_rerun_completes(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1, 2, 3])
    first = cdlib.run(_play("1.0.0", builds["1.0.0"]), inv)
    assert first.ok, [(r.host, r.msg) for r in first.results if r.status is Status.FAILED]
    # host2's install of 1.1.0 is slow (its check runs 5 s); it dies in the middle.
    slow = (
        'if [ "$(hostname -I 2>/dev/null)" = x ]; then :; fi; '
        "case {{ inventory_hostname }} in host2) sleep 5;; esac"
    )
    out: list[cdlib.RunResult] = []
    t = threading.Thread(
        target=lambda: out.append(cdlib.run(_play("1.1.0", builds["1.1.0"], check_cmd=slow), inv))
    )
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not fleet.path(2, f"{ROOT}/releases/1.1.0").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # inside the check, before the switch
    fleet.stop_host(2)
    t.join(60)
    res = out[0]
    assert res.unreachable_hosts == ["host2"]
    assert res.exit_code == cdlib.EXIT_UNREACHABLE
    assert _current(fleet, 1) == "1.1.0" and _current(fleet, 3) == "1.1.0"
    assert _current(fleet, 2) == "1.0.0"  # never switched, never missing
    fleet.start_host(2)
    again = cdlib.run(_play("1.1.0", builds["1.1.0"]), inv, extra_vars={})
    failed = [
        (r.host, r.msg)
        for r in again.results
        if r.status is not Status.OK and r.status is not Status.CHANGED
    ]
    if failed and "lock" in failed[0][1]:
        pytest.fail(f"the dead run's host lock blocks the re-run: {failed}")
    assert again.ok, failed
    assert _current(fleet, 2) == "1.1.0"


def test_disk_full_while_unpacking_keeps_old_release(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1])
    fleet.ssh(1, f"mkdir -p {ROOT} && mount -t tmpfs -o size=2m tmpfs {ROOT}", check=True)
    try:
        first = cdlib.run(_play("1.0.0", builds["1.0.0"]), inv)
        assert first.ok, [r.msg for r in first.results if r.status is Status.FAILED]
        # Fill the disk to the last few KB.
        fleet.ssh(
            1,
            f"dd if=/dev/zero of={ROOT}/filler bs=4k 2>/dev/null; rm -f {ROOT}/filler.small; true",
        )
        res = cdlib.run(_play("1.1.0", builds["1.1.0"]), inv)
        assert not res.ok
        msg = next(r.msg for r in res.results if r.status is Status.FAILED)
        assert "space" in msg.lower(), msg
        assert fleet.ssh(1, f"readlink {ROOT}/current").stdout.strip().endswith("1.0.0")
        listing = fleet.ssh(1, f"ls -A {ROOT}/releases").stdout.split()
        assert "1.1.0" not in listing, listing  # no partial release left as if good
        leftovers = fleet.ssh(1, f"ls -A {ROOT}").stdout.split()
        assert not [n for n in leftovers if "cdlib-" in n and "lock" not in n], leftovers
    finally:
        fleet.ssh(1, f"umount {ROOT}")
