"""Hosts failing in the middle of an install (issue 11) on the real SSH fleet."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cdlib
from cdlib import Play, Status, tasks
from cdlib.facts.release import ReleaseFact, ReleaseState, parse_release_state
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
    play.task(tasks.install("faultapp", version, str(build), root=ROOT, **kw))  # type: ignore[arg-type]
    return play


def _commands(fleet: Fleet, k: int) -> set[str]:
    """Names of the processes running on host k."""
    names = set()
    for pid in fleet.processes(k):
        with contextlib.suppress(OSError):  # exited meanwhile
            names.add(Path(f"/proc/{pid}/comm").read_text().strip())
    return names


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
    slow = "case {{ inventory_hostname }} in host2) sleep 5;; esac"
    t, out = _start_run(_play("1.1.0", builds["1.1.0"], check_cmd=slow), inv)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not fleet.path(2, f"{ROOT}/releases/1.1.0").exists():
        time.sleep(0.05)
    # Inside the check (its sleep is running), before the switch.
    while time.monotonic() < deadline and "sleep" not in _commands(fleet, 2):
        time.sleep(0.05)
    fleet.stop_host(2)
    t.join(60)
    res = out[0]
    assert res.unreachable_hosts == ["host2"]
    assert res.exit_code == cdlib.EXIT_UNREACHABLE
    assert _current(fleet, 1) == "1.1.0" and _current(fleet, 3) == "1.1.0"
    assert _current(fleet, 2) == "1.0.0"  # never switched, never missing
    fleet.start_host(2)
    again = cdlib.run(_play("1.1.0", builds["1.1.0"]), inv, extra_vars={})
    failed = _problems(again)
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


# ---------------------------------------------------------------------------------------------
# Killing a host at an exact point of the install: a shim in that host's mount namespace only.

SHIM_DIR = "/opt/cdlib-fault-shim"  # per-host private dir (tests/fleet.py), visible to the test
#: Upper bound for every wait below; a shim sleeps longer than this, so the test kills it.
DEADLINE = 20.0


@contextlib.contextmanager
def _shim(fleet: Fleet, k: int, tool: str, body: str) -> Iterator[Path]:
    """Replace ``tool`` on host ``k`` only by the sh script ``body``; yield the shim dir.

    The script is bind-mounted over the tool's binary inside host ``k``'s mount namespace
    (so it catches every caller whatever its PATH); the real binary is copied next to it
    as ``real-<tool>`` (``$REAL`` in the script), and ``$HIT`` names a marker file the
    script touches to say "now": the test sees it as ``<shim dir>/hit``. On exit, a host
    still running in that namespace is restarted, which also kills whatever the shim left
    sleeping and drops the mount.
    """
    found = shutil.which(tool)
    assert found, tool
    real = os.path.realpath(found)
    d = fleet.path(k, SHIM_DIR)
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy2(real, d / f"real-{tool}")
    script = d / tool
    script.write_text(f"#!/bin/sh\nREAL={SHIM_DIR}/real-{tool}; HIT={SHIM_DIR}/hit\n{body}")
    script.chmod(0o755)
    pid = fleet.pid(k)
    fleet.ssh(k, f"mount --bind {SHIM_DIR}/{tool} {real}", check=True)
    try:
        yield d
    finally:
        if fleet.is_running(k) and fleet.pid(k) == pid:
            fleet.stop_host(k)
            fleet.start_host(k)


def _kill_host(fleet: Fleet, k: int) -> None:
    """Host ``k`` dies: every process in its namespace but the sshd listener is SIGKILLed
    (its SSH sessions, the install script, the shim), so nothing gets to run a cleanup trap,
    as on a power loss; then the listener is stopped (:meth:`Fleet.stop_host`)."""
    listener = fleet.pid(k)
    for p in fleet.processes(k):
        if p != listener:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    fleet.stop_host(k)


def _start_run(play: Play, inv: Path) -> tuple[threading.Thread, list[cdlib.RunResult]]:
    out: list[cdlib.RunResult] = []
    t = threading.Thread(target=lambda: out.append(cdlib.run(play, inv)), daemon=True)
    t.start()
    return t, out


def _wait_for(marker: Path, run: threading.Thread, what: str) -> None:
    """Wait (bounded) until the shim touched ``marker``; fail if the run ends first."""
    deadline = time.monotonic() + DEADLINE
    while not marker.exists():
        if not run.is_alive():
            pytest.fail(f"the run ended before {what}: the shim was never reached")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached after {DEADLINE:g}s")
        time.sleep(0.02)


def _join(run: threading.Thread, out: list[cdlib.RunResult]) -> cdlib.RunResult:
    run.join(DEADLINE)
    assert not run.is_alive(), f"the run did not end within {DEADLINE:g}s of the host's death"
    return out[0]


def _state(fleet: Fleet, k: int) -> ReleaseState:
    """The app's release state on host ``k`` as the release task itself reads it."""
    res = fleet.ssh(k, ReleaseFact(ROOT).command(), check=True)
    return parse_release_state(res.stdout, ROOT)


def _served(fleet: Fleet, k: int) -> str:
    """The VERSION file of the release ``current`` resolves to on host ``k`` (absolute link)."""
    target = os.readlink(fleet.path(k, f"{ROOT}/current"))
    return fleet.path(k, f"{target}/VERSION").read_text().strip()


def _log(fleet: Fleet, k: int) -> list[dict[str, object]]:
    text = fleet.path(k, f"{ROOT}/.cdlib/releases.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _problems(res: cdlib.RunResult) -> list[tuple[str, str]]:
    return [(r.host, r.msg) for r in res.results if r.status not in (Status.OK, Status.CHANGED)]


@pytest.fixture(scope="module")
def big_build(builds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1.1.0 sample build plus 8 MiB of random bytes (it does not compress).

    More than SSH's 2 MiB channel window plus a pipe: while the host reads only the first
    KiB, the control machine is still blocked sending the rest.
    """
    out = tmp_path_factory.mktemp("big-build") / "sampleapp-1.1.0-big.tar.gz"
    with tarfile.open(builds["1.1.0"]) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        blob = os.urandom(8 << 20)
        info = tarfile.TarInfo("blob.bin")
        info.size = len(blob)
        dst.addfile(info, io.BytesIO(blob))
    return out


# The upload is the install script's `cat > "$c/.build.tar.gz"` (the build streamed on the
# command's stdin). The shim writes the first KiB, then stops reading: the host dies with a
# partial upload on disk and the control machine still sending.
_UPLOAD_SHIM = """\
case "$(readlink /proc/$$/fd/1)" in
*/.build.tar.gz) head -c 1024; : > "$HIT"; exec sleep 60;;
esac
exec "$REAL" "$@"
"""
# The unpack is `tar -xzf "$up" -C "$tmp" ...` into releases/.<V>.cdlib-XXXXXX. The shim
# unpacks only the build's first file, then stops: a half-unpacked release directory.
_UNPACK_SHIM = """\
case "$1 $4" in
"-xzf "*/releases/.*.cdlib-*)
    first=$("$REAL" -tzf "$2" | grep -v '/$' | head -n 1)
    "$REAL" "$@" -- "$first" && : > "$HIT"; exec sleep 60;;
esac
exec "$REAL" "$@"
"""


@pytest.mark.parametrize("phase", ["upload", "unpack"])
def test_host_killed_during_upload_or_unpack_keeps_old_release_and_rerun_completes(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path], big_build: Path, phase: str
) -> None:
    """Issue 11: host2's sshd and sessions are killed in the middle of receiving the build
    (upload) or of unpacking it; hosts 1 and 3 finish, host2 is unreachable, keeps 1.0.0 as
    ``current`` and has no 1.1.0 release the release task would take as installed; a
    re-run (host2 back) completes it, breaking the dead run's deploy lock."""
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1, 2, 3])
    first = cdlib.run(_play("1.0.0", builds["1.0.0"]), inv)
    assert first.ok, _problems(first)
    build = big_build if phase == "upload" else builds["1.1.0"]
    tool, body = ("cat", _UPLOAD_SHIM) if phase == "upload" else ("tar", _UNPACK_SHIM)
    with _shim(fleet, 2, tool, body) as shim:
        run, out = _start_run(_play("1.1.0", build), inv)
        _wait_for(shim / "hit", run, f"host2's {phase}")
        # Caught in the act: what host2 has on disk right now is partial.
        if phase == "upload":
            ups = list(fleet.path(2, f"{ROOT}/.cdlib").glob(".config.*/.build.tar.gz"))
            assert [p.stat().st_size for p in ups] == [1024], ups
        else:
            (tmp,) = fleet.path(2, f"{ROOT}/releases").glob(".1.1.0.cdlib-*")
            assert sorted(p.name for p in tmp.iterdir()) == ["VERSION"]
        _kill_host(fleet, 2)
        res = _join(run, out)
    assert res.unreachable_hosts == ["host2"], _problems(res)
    assert res.exit_code == cdlib.EXIT_UNREACHABLE
    assert _current(fleet, 1) == "1.1.0" and _current(fleet, 3) == "1.1.0"
    fleet.start_host(2)
    st = _state(fleet, 2)
    assert st.current_version == "1.0.0"  # never switched, never missing
    # Nothing of 1.1.0 that the release task would take as installed: no releases/1.1.0,
    # no install record in the release log, no bad mark either.
    assert sorted(st.releases) == ["1.0.0"] and not st.bad
    assert [r["version"] for r in _log(fleet, 2) if r["action"] == "install"] == ["1.0.0"]
    assert st.lock is not None  # the dead run's deploy lock is still there
    # The dead run's temp files are still there too (killed, it cleaned up nothing).
    if phase == "upload":
        assert list(fleet.path(2, f"{ROOT}/.cdlib").glob(".config.*/.build.tar.gz"))
    else:
        assert list(fleet.path(2, f"{ROOT}/releases").glob(".1.1.0.cdlib-*"))

    again = cdlib.run(_play("1.1.0", build), inv)
    assert again.ok, _problems(again)
    assert {r.host for r in again.results if r.status is Status.CHANGED} == {"host2"}
    st = _state(fleet, 2)
    assert st.current_version == "1.1.0" and st.lock is None
    assert _served(fleet, 2) == "1.1.0"
    # The re-run cleaned up after the dead one: no temp dirs, no partial upload.
    assert not list(fleet.path(2, f"{ROOT}/releases").glob(".*")), "temp release dir left"
    assert not list(fleet.path(2, f"{ROOT}/.cdlib").glob(".config.*")), "temp upload left"


# The switch is `rm -f TMP && ln -s RELEASE TMP && mv -T -f -- TMP current` (one rename(2),
# see cdlib/connections/shell.py atomic_symlink_command). The shim catches only that mv (its
# last argument is .../current; the release dir's own `mv -T` is left alone) and holds the
# command there, before or after the real rename, until the test kills the host.
_SWITCH_SHIMS = {
    "before-rename": """\
for last in "$@"; do :; done
case "$1 $last" in
"-T "*/current) : > "$HIT"; exec sleep 60;;
esac
exec "$REAL" "$@"
""",
    "after-rename": """\
for last in "$@"; do :; done
case "$1 $last" in
"-T "*/current) "$REAL" "$@" || exit; : > "$HIT"; exec sleep 60;;
esac
exec "$REAL" "$@"
""",
}


@pytest.mark.parametrize(
    ("when", "expected"), [("before-rename", "1.0.0"), ("after-rename", "1.1.0")]
)
def test_connection_cut_during_current_switch_leaves_old_or_new_and_rerun_converges(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path], when: str, expected: str
) -> None:
    """Issue 11: host2's connection is cut (sshd and every session process killed) while
    the command switching ``current`` is in flight, just before or just after the rename.
    ``current`` is then a valid link to the old release (before) or the new one (after),
    never missing or dangling; host2 is unreachable; a re-run converges on 1.1.0."""
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1, 2, 3])
    first = cdlib.run(_play("1.0.0", builds["1.0.0"]), inv)
    assert first.ok, _problems(first)
    with _shim(fleet, 2, "mv", _SWITCH_SHIMS[when]) as shim:
        run, out = _start_run(_play("1.1.0", builds["1.1.0"]), inv)
        _wait_for(shim / "hit", run, f"host2's switch ({when})")
        _kill_host(fleet, 2)
        res = _join(run, out)
    assert res.unreachable_hosts == ["host2"], _problems(res)
    assert res.exit_code == cdlib.EXIT_UNREACHABLE
    assert _current(fleet, 1) == "1.1.0" and _current(fleet, 3) == "1.1.0"
    link = fleet.path(2, f"{ROOT}/current")
    assert link.is_symlink()
    assert os.readlink(link) == f"{ROOT}/releases/{expected}"
    assert _served(fleet, 2) == expected  # resolves: not missing, not dangling
    # Before the rename, the new link waits under its temporary name; after it, it is gone.
    tmp_link = fleet.path(2, f"{ROOT}/.current.cdlib-link")
    assert tmp_link.is_symlink() == (when == "before-rename")

    fleet.start_host(2)
    assert "1.1.0" in _state(fleet, 2).releases  # installed before the switch, both ways
    again = cdlib.run(_play("1.1.0", builds["1.1.0"]), inv)
    assert again.ok, _problems(again)
    changed = {r.host for r in again.results if r.status is Status.CHANGED}
    # Before the rename the re-run still has the switch to make; after it, nothing to do.
    assert changed == ({"host2"} if expected == "1.0.0" else set())
    assert _current(fleet, 2) == "1.1.0"
    assert _served(fleet, 2) == "1.1.0"
    assert not list(fleet.path(2, ROOT).glob(".current*")), "temporary link left behind"
