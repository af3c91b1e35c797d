"""Issue 4 (services and releases) against the real fleet: sshd hosts, supervisord, HTTP."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cdlib
from cdlib import Play, Status, tasks
from tests.fleet import Fleet
from tests.sample_app import build_release, free_port, http_get

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "sampleapp_install.py"
ROOT = "/srv/sampleapp"

pytestmark = [pytest.mark.fleet, pytest.mark.usefixtures("sampleapp_account")]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sample app tarballs 1.0.0 .. 1.6.0 and a 9.9.9 that crashes at start."""
    out = tmp_path_factory.mktemp("builds")
    b = {f"1.{i}.0": build_release(f"1.{i}.0", out) for i in range(7)}
    b["9.9.9"] = build_release("9.9.9", out, fail_mode="crash")
    return b


def _install(
    inv: Path, builds: dict[str, Path], version: str, port: int, *, check: bool = False
) -> cdlib.RunResult:
    return cdlib.run(
        PLAYBOOK,
        inv,
        check=check,
        extra_vars={"version": version, "build": str(builds[version]), "app_port": port},
    )


def _failures(r: cdlib.RunResult) -> list[tuple[str, str, str]]:
    return [(x.host, x.task, x.msg) for x in r.results if x.status is Status.FAILED]


def _versions(fleet: Fleet, port: int) -> dict[str, str]:
    """GET /version on every host (bounded retries while a restart settles)."""
    out: dict[str, str] = {}
    for h in fleet.hosts:
        body = "unreachable"
        for _ in range(50):
            try:
                body = http_get(f"http://{h.address}:{port}/version", timeout=2).body.strip()
                break
            except OSError:
                time.sleep(0.1)
        out[h.name] = body
    return out


def _release_play(version: str, build: Path, **kw: Any) -> Play:
    play = Play(f"install {version}", hosts="all")
    play.task(tasks.install("sampleapp", version, str(build), **kw))
    return play


def _one_host(fleet: Fleet, tmp_path: Path, k: int = 1) -> Path:
    fleet.reset()
    return fleet.inventory_yaml(tmp_path / "one.yml", hosts=[k])


def test_provision_install_upgrade_rerun_rollback_on_five_hosts(
    fleet: Fleet, fleet_inventory: Path, builds: dict[str, Path]
) -> None:
    port = free_port(fleet.hosts[0].address)

    # --check predicts every change of the first run and touches nothing.
    predicted = _install(fleet_inventory, builds, "1.0.0", port, check=True)
    assert predicted.ok, _failures(predicted)
    for h in fleet.hosts:
        assert not fleet.path(h.index, ROOT).exists()
        assert not fleet.path(h.index, "/etc/cdlib-host/supervisord.conf").exists()
    first = _install(fleet_inventory, builds, "1.0.0", port)
    assert first.ok, _failures(first)
    assert first.changed() == predicted.changed()
    assert {t for _, t in first.changed()} >= {
        "install sampleapp 1.0.0",
        "service sampleapp started",
        "restart sampleapp",
    }
    assert _versions(fleet, port) == {h.name: "1.0.0" for h in fleet.hosts}
    # Each host runs a supervisord of its own, with its own socket under its private dirs.
    pids = set()
    for h in fleet.hosts:
        res = fleet.ssh(
            h.index, "supervisorctl -c /etc/cdlib-host/supervisord.conf pid", check=True
        )
        pids.add(res.stdout.strip())
        assert fleet.path(h.index, "/var/lib/cdlib/supervisor/supervisor.sock").exists()
    assert len(pids) == 5

    # A re-run changes nothing (no restart either) and costs one fact read per play.
    conns: list[cdlib.api.Connection] = []

    def factory(host: cdlib.Host) -> cdlib.api.Connection:
        c = cdlib.api.connection_for(host)
        conns.append(c)
        return c

    again = cdlib.run(
        PLAYBOOK,
        fleet_inventory,
        extra_vars={"version": "1.0.0", "build": str(builds["1.0.0"]), "app_port": port},
        connection_factory=factory,
    )
    assert again.ok and again.changed() == set()
    assert all(c.stats.round_trips <= 2 for c in conns), [c.stats.round_trips for c in conns]

    # 1.1.0: installed, switched, restarted through the handler.
    up = _install(fleet_inventory, builds, "1.1.0", port)
    assert up.ok, _failures(up)
    assert {t for _, t in up.changed()} == {"install sampleapp 1.1.0", "restart sampleapp"}
    assert _versions(fleet, port) == {h.name: "1.1.0" for h in fleet.hosts}
    log = fleet.path(2, f"{ROOT}/.cdlib/releases.jsonl").read_text().splitlines()
    rec = [json.loads(line) for line in log]
    installs = [r for r in rec if r["action"] == "install"]
    assert [r["version"] for r in installs] == ["1.0.0", "1.1.0"]
    assert (
        installs[1]["build_sha256"]
        == builds["1.1.0"].with_suffix(".gz.sha256").read_text().split()[0]
    )
    assert all(r["user"] and r["time"] for r in installs)
    rev = fleet.path(2, f"{ROOT}/releases/1.1.0/REVISION").read_text()
    assert "version=1.1.0" in rev
    env = fleet.path(2, f"{ROOT}/releases/1.1.0/.env").read_text()
    assert f"APP_BIND={fleet.hosts[1].address}" in env

    # A config change alone (the env file) is written into the release and restarts the app.
    recolor = cdlib.run(
        PLAYBOOK,
        fleet_inventory,
        extra_vars={
            "version": "1.1.0",
            "build": str(builds["1.1.0"]),
            "app_port": port,
            "app_color": "green",
        },
    )
    assert recolor.ok, _failures(recolor)
    assert {t for _, t in recolor.changed()} == {"install sampleapp 1.1.0", "restart sampleapp"}
    [res] = [x for x in recolor.results if x.host == "host3" and x.task.startswith("install")]
    assert res.changes == ["config .env"]
    body = json.loads(http_get(f"http://{fleet.hosts[2].address}:{port}/").body)
    assert body["color"] == "green" and body["version"] == "1.1.0"

    # Rollback brings back 1.0.0, restarted through a handler.
    back = Play("rollback", hosts="all")
    back.task(tasks.install_rollback("sampleapp", notify="restart"))
    back.handler("restart", tasks.service("sampleapp", backend="supervisord", state="restarted"))
    rolled = cdlib.run(back, fleet_inventory)
    assert rolled.ok, _failures(rolled)
    assert _versions(fleet, port) == {h.name: "1.0.0" for h in fleet.hosts}
    for h in fleet.hosts:
        link = fleet.ssh(h.index, f"readlink {ROOT}/current", check=True).stdout.strip()
        assert link == f"{ROOT}/releases/1.0.0"


def test_release_that_crashes_at_start_fails_the_service_task_with_its_log(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path)
    port = free_port(fleet.hosts[0].address)
    r = _install(inv, builds, "9.9.9", port)
    [(host, task, msg)] = _failures(r)
    assert (host, task) == ("host1", "service sampleapp started")
    assert "crashing at start" in msg  # the program's log tail
    state = fleet.ssh(1, "supervisorctl -c /etc/cdlib-host/supervisord.conf status sampleapp")
    assert "RUNNING" not in state.stdout


def test_switch_is_atomic_for_a_reader_in_a_tight_loop(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path)
    assert cdlib.run(_release_play("1.0.0", builds["1.0.0"]), inv).ok
    reader_code = (
        "import os, json, time\n"
        f"cur = '{ROOT}/current'; stop = '{ROOT}/.stop-reader'\n"
        "n = 0; seen = {}; bad = []; end = time.monotonic() + 120\n"
        "while n < 5_000_000 and time.monotonic() < end and not os.path.exists(stop):\n"
        "    n += 1\n"
        "    try:\n"
        "        os.stat(cur)\n"
        "        with open(cur + '/VERSION') as f: v = f.read().strip()\n"
        "        seen[v] = seen.get(v, 0) + 1\n"
        "    except OSError as e:\n"
        "        bad.append(repr(e))\n"
        "print(json.dumps({'n': n, 'seen': seen, 'bad': bad[:10], 'nbad': len(bad)}))\n"
    )
    reader = subprocess.Popen(
        ["nsenter", "-t", str(fleet.pid(1)), "-m", "--", "python3", "-c", reader_code],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for v in ("1.1.0", "1.2.0"):
            r = cdlib.run(_release_play(v, builds[v]), inv)
            assert r.ok, _failures(r)
        for to in ("1.0.0", "1.2.0", "1.1.0"):
            r = cdlib.run(
                Play("rb", hosts="all", tasks=[tasks.install_rollback("sampleapp", to=to)]), inv
            )
            assert r.ok, _failures(r)
    finally:
        fleet.ssh(1, f"touch {ROOT}/.stop-reader")
        out, _ = reader.communicate(timeout=150)
    report = json.loads(out)
    assert report["nbad"] == 0, report["bad"]
    assert report["n"] > 0
    assert len(report["seen"]) >= 2, report["seen"]
    assert not list(fleet.path(1, ROOT).glob(".current*")), "temporary link left behind"


def test_seven_installs_keep_five_never_current_or_previous(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path)
    releases = fleet.path(1, f"{ROOT}/releases")
    for i in range(7):
        v = f"1.{i}.0"
        r = cdlib.run(_release_play(v, builds[v], keep=5), inv)
        assert r.ok, _failures(r)
    assert sorted(p.name for p in releases.iterdir()) == [f"1.{i}.0" for i in range(2, 7)]
    # Go back to the oldest kept release, then install again with keep=2: the current and
    # the previous release are kept although they are the oldest.
    r = cdlib.run(
        Play("rb", hosts="all", tasks=[tasks.install_rollback("sampleapp", to="1.2.0")]), inv
    )
    assert r.ok, _failures(r)
    r = cdlib.run(_release_play("1.0.0", builds["1.0.0"], keep=2), inv)
    assert r.ok, _failures(r)
    assert sorted(p.name for p in releases.iterdir()) == ["1.0.0", "1.2.0"]
    assert fleet.ssh(1, f"cat {ROOT}/current/VERSION").stdout.strip() == "1.0.0"
    log = fleet.path(1, f"{ROOT}/.cdlib/releases.jsonl").read_text().splitlines()
    prunes = [json.loads(line) for line in log if '"prune"' in line]
    assert prunes[-1]["removed"] == ["1.3.0", "1.4.0", "1.5.0", "1.6.0"]


def test_failed_release_is_marked_bad_and_skipped_by_rollback(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path)
    for v in ("1.0.0", "1.1.0"):
        assert cdlib.run(_release_play(v, builds[v]), inv).ok
    # The pre-switch check fails for the broken build: marked bad, current stays 1.1.0.
    check = "! grep -q 'built broken' bin/start"
    r = cdlib.run(_release_play("9.9.9", builds["9.9.9"], check_cmd=check), inv)
    [fail] = _failures(r)
    assert "check_cmd failed in release 9.9.9; marked bad" in fail[2]
    assert fleet.ssh(1, f"cat {ROOT}/current/VERSION").stdout.strip() == "1.1.0"
    assert fleet.path(1, f"{ROOT}/.cdlib/bad/9.9.9").exists()
    assert not fleet.path(1, f"{ROOT}/.cdlib/deploy.lock").exists(), "lock not released"
    # Installing it again is refused with a clear message.
    r = cdlib.run(_release_play("9.9.9", builds["9.9.9"]), inv)
    assert "9.9.9 of sampleapp is marked bad" in _failures(r)[0][2]
    # 1.2.0 goes in; 1.1.0 is marked bad by hand; rollback skips it (and 9.9.9) to 1.0.0.
    assert cdlib.run(_release_play("1.2.0", builds["1.2.0"]), inv).ok
    play = Play("bad", hosts="all")
    play.task(tasks.mark_bad("sampleapp", "1.1.0", reason="errors in prod"))
    play.task(tasks.install_rollback("sampleapp"))
    checked = cdlib.run(play, inv, check=True)
    assert checked.ok, _failures(checked)
    [sw] = [x for x in checked.results if x.task.startswith("install_rollback")]
    assert sw.changes[0] == "switch current 1.2.0 -> 1.0.0"
    r = cdlib.run(play, inv)
    assert r.ok, _failures(r)
    assert fleet.ssh(1, f"cat {ROOT}/current/VERSION").stdout.strip() == "1.0.0"
    # Nothing good before 1.0.0: a clear error.
    r = cdlib.run(Play("rb", hosts="all", tasks=[tasks.install_rollback("sampleapp")]), inv)
    assert "no good release before 1.0.0" in _failures(r)[0][2]


def test_held_lock_fails_clearly_and_is_left_to_its_owner(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path)
    assert cdlib.run(_release_play("1.0.0", builds["1.0.0"]), inv).ok
    owner = {
        "user": "alice",
        "controlhost": "laptop",
        "pid": 4242,
        "since": "2026-01-02T03:04:05Z",
        "token": "t0k",
    }
    lock = fleet.path(1, f"{ROOT}/.cdlib/deploy.lock")
    lock.write_text(json.dumps(owner) + "\n")
    r = cdlib.run(_release_play("1.1.0", builds["1.1.0"], lock_timeout=0.5), inv)
    [(_, _, msg)] = _failures(r)
    assert "alice@laptop pid 4242 since 2026-01-02T03:04:05Z" in msg
    assert "deploy lock of app 'sampleapp' on host1" in msg
    assert json.loads(lock.read_text())["token"] == "t0k", "someone else's lock was touched"
    assert fleet.ssh(1, f"cat {ROOT}/current/VERSION").stdout.strip() == "1.0.0"
    assert not fleet.path(1, f"{ROOT}/releases/1.1.0").exists()
    # Check mode says who holds it; once freed the install goes through and frees it.
    checked = cdlib.run(_release_play("1.1.0", builds["1.1.0"]), inv, check=True)
    assert any("deploy lock held by alice@laptop" in c for x in checked.results for c in x.changes)
    lock.unlink()
    assert cdlib.run(_release_play("1.1.0", builds["1.1.0"]), inv).ok
    assert not lock.exists()


def test_two_runs_at_once_one_waits_nothing_corrupted(
    fleet: Fleet, tmp_path: Path, builds: dict[str, Path]
) -> None:
    inv = _one_host(fleet, tmp_path)
    assert cdlib.run(_release_play("1.0.0", builds["1.0.0"]), inv).ok
    results: dict[str, cdlib.RunResult] = {}

    def go(v: str) -> None:
        results[v] = cdlib.run(_release_play(v, builds[v], lock_timeout=60), inv)

    threads = [threading.Thread(target=go, args=(v,)) for v in ("1.1.0", "1.2.0")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(r.ok for r in results.values()), {v: _failures(r) for v, r in results.items()}
    root = fleet.path(1, ROOT)
    cur = fleet.ssh(1, f"cat {ROOT}/current/VERSION").stdout.strip()
    assert cur in ("1.1.0", "1.2.0")
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert (root / "releases" / v / "VERSION").read_text().strip() == v
        assert f"version={v}" in (root / "releases" / v / "REVISION").read_text()
    assert sorted(p.name for p in (root / "releases").iterdir()) == ["1.0.0", "1.1.0", "1.2.0"]
    records = [json.loads(x) for x in (root / ".cdlib/releases.jsonl").read_text().splitlines()]
    assert sorted(r["version"] for r in records if r["action"] == "install") == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
    ]
    assert not (root / ".cdlib" / "deploy.lock").exists()
    assert not [p for p in (root / ".cdlib").iterdir() if p.name.startswith(("upload", ".config"))]


def test_systemd_backend_reports_missing_systemd_clearly(fleet: Fleet, tmp_path: Path) -> None:
    inv = _one_host(fleet, tmp_path)
    play = Play("systemd", hosts="all")
    play.task(tasks.service("sampleapp", state="started"))
    r = cdlib.run(play, inv)
    [(host, task, msg)] = _failures(r)
    assert host == "host1" and task == "service sampleapp started"
    assert "systemd is not running on host1" in msg and "backend='supervisord'" in msg


@pytest.fixture
def unit_root(tmp_path: Path) -> Iterator[Path]:
    """An app root whose current/bin/start exists (systemd-analyze checks ExecStart)."""
    start = tmp_path / "app" / "current" / "bin" / "start"
    start.parent.mkdir(parents=True)
    start.write_text("#!/bin/sh\nexit 0\n")
    start.chmod(0o755)
    yield tmp_path / "app"


def test_unit_template_passes_systemd_analyze_verify(unit_root: Path, tmp_path: Path) -> None:
    if subprocess.run(["sh", "-c", "command -v systemd-analyze"]).returncode != 0:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    from cdlib.engine.templating import Templar

    templar = Templar([REPO / "playbooks", REPO / "playbooks" / "templates"])
    text = templar.render_file(
        "sampleapp.service.j2", {"app": "sampleapp", "app_user": "root", "root": str(unit_root)}
    )
    unit = tmp_path / "sampleapp.service"
    unit.write_text(text)
    res = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    # ... and a broken unit is caught by the same check.
    unit.write_text(text.replace(f"ExecStart={unit_root}", "ExecStart=relative"))
    res = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode != 0
