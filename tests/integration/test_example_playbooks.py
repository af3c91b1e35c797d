"""Every example playbook in playbooks/ runs: in check mode at least, for real where it can.

``hello.py`` runs on the SSH fleet (more in test_engine_fleet.py). ``bluegreen_local.py``
runs against ``inventories/bluegreen-local.yml`` in check mode (nothing deployed, no traffic
moved, nothing recorded), then for real on a copy of that inventory with free ports and
temporary directories: the sample app goes live behind a real local HAProxy.
``sampleapp_local.py`` is the deploy helper both release examples import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdlib.traffic.local import LocalHAProxy
from tests.fleet import Fleet
from tests.integration.traffic.traffic_helpers import free_port

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"

#: Each example playbook and the tests below that exercise it; a new playbook must be added.
COVERED = {
    "hello.py": "test_hello_check_then_real_on_the_fleet",
    "bluegreen_local.py": "test_bluegreen_local_check_mode / test_bluegreen_local_real_release",
    "sampleapp_local.py": "imported by bluegreen_local.py (deploy helper, no plays of its own)",
    "canary_local.py": "test_bluegreen_local_real_release (check mode on a live release)",
    "bluegreen_aws.py": "tests/integration/traffic/test_aws_playbooks.py (moto server)",
    "canary_aws.py": "tests/integration/traffic/test_aws_playbooks.py (moto server)",
    "aws_environment.py": "tests/integration/traffic/test_aws_environment.py (moto server)",
    "aws_release.py": "tests/integration/traffic/test_release_asg.py (moto server)",
    "aws_common.py": "imported by the AWS examples (settings and deploy, no plays)",
    "sampleapp_install.py": "tests/integration/test_releases_fleet.py (every run there)",
}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdlib", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=180,
    )


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_example_playbook_is_exercised() -> None:
    found = {p.name for p in PLAYBOOKS.glob("*.py")}
    assert found == set(COVERED), f"playbooks without a test here: {sorted(found - set(COVERED))}"


@pytest.mark.fleet
def test_hello_check_then_real_on_the_fleet(fleet: Fleet, fleet_inventory: Path) -> None:
    secret = "docs-example-token-1234"
    env = {"HELLO_API_TOKEN": secret}
    args = ("run", "playbooks/hello.py", "-i", str(fleet_inventory), "--format", "json")
    checked = _cli(*args, "--check", "--diff", env=env)
    assert checked.returncode == 0, checked.stderr
    assert secret not in checked.stdout
    recap = _events(checked.stdout)[-1]
    assert recap["event"] == "recap" and recap["check"] is True
    assert all(s["changed"] > 0 for s in recap["hosts"].values())
    for h in fleet.hosts:
        assert not fleet.path(h.index, "/srv/hello").exists()

    real = _cli(*args, env=env)
    assert real.returncode == 0, real.stderr
    for h in fleet.hosts:
        assert fleet.path(h.index, "/srv/hello/releases/1.0.0/VERSION").read_text() == "1.0.0\n"


needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")


def _stop_haproxy(workdir: Path, bind: str) -> None:
    if workdir.exists():
        LocalHAProxy(workdir, bind=bind).stop()


def _snapshot(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {str(p): p.read_bytes() for p in sorted(root.rglob("REVISION"))}


@needs_haproxy
def test_bluegreen_local_check_mode(tmp_path: Path) -> None:
    inventory = REPO / "inventories" / "bluegreen-local.yml"
    app_dirs = Path(
        yaml.safe_load(inventory.read_text())["all"]["children"]["blue"]["hosts"]["blue1"][
            "app_dir"
        ]
    ).parent
    before = _snapshot(app_dirs)
    lb = f"127.0.0.1:{free_port()}"
    workdir = tmp_path / "haproxy"
    state = tmp_path / "state"
    env = {"CDLIB_STATE_DIR": str(state), "CDLIB_DEMO_DIR": str(workdir), "CDLIB_DEMO_LB": lb}
    try:
        # Without a version (no -e version=, no CDLIB_DEMO_VERSION) nothing is released:
        # exit 4, naming the strategy's file and line, before anything is touched.
        bare = _cli("run", "playbooks/bluegreen_local.py", "-i", str(inventory), env=env)
        assert bare.returncode == 4, bare.stdout + bare.stderr
        assert "playbooks/bluegreen_local.py:" in bare.stderr
        assert "option 'version'" in bare.stderr and "CDLIB_DEMO_VERSION" in bare.stderr
        assert not LocalHAProxy(workdir, bind=lb).running()
        assert not state.exists() or not any(state.rglob("*.json*"))
        res = _cli(
            "run",
            "playbooks/bluegreen_local.py",
            "-i",
            str(inventory),
            "-e",
            "version=1.0.0",
            "--check",
            "--format",
            "json",
            env=env,
        )
        assert res.returncode == 0, res.stderr
        events = _events(res.stdout)
        results = [(e["task"], e["status"], e["msg"]) for e in events if "task" in e]
        # HAProxy is not running yet: check mode says a real run would start it, and
        # cannot predict the rest without it ...
        assert (f"start HAProxy in {workdir}", "changed", f"would start HAProxy in {workdir}") in (
            results
        )
        assert any(t == "release" and s == "skipped" for t, s, _ in results), results
        assert events[-1]["check"] is True
        # ... started nothing (read-only), moved no traffic ...
        assert not LocalHAProxy(workdir, bind=lb).running()
        assert not (workdir / "haproxy.cfg").exists()
        # ... deployed nothing, and recorded no release (no lock, no history).
        assert _snapshot(app_dirs) == before
        assert not state.exists() or not any(state.rglob("*.json*"))
    finally:
        _stop_haproxy(workdir, lb)


@pytest.fixture
def local_bluegreen(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Path, str]]:
    """A copy of inventories/bluegreen-local.yml with free ports and temporary app dirs."""
    inv = yaml.safe_load((REPO / "inventories" / "bluegreen-local.yml").read_text())
    dirs = []
    for group in inv["all"]["children"].values():
        for name, hv in group["hosts"].items():
            hv["app_port"] = free_port()
            hv["app_dir"] = str(tmp_path / name)
            dirs.append(tmp_path / name)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    lb = f"127.0.0.1:{free_port()}"
    workdir = tmp_path / "haproxy"
    env = {
        "CDLIB_STATE_DIR": str(tmp_path / "state"),
        "CDLIB_DEMO_DIR": str(workdir),
        "CDLIB_DEMO_LB": lb,
    }
    try:
        yield path, env, workdir, lb
    finally:
        _stop_haproxy(workdir, lb)
        for d in dirs:
            pid = d / "pid"
            if pid.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid.read_text()), signal.SIGKILL)


@needs_haproxy
def test_bluegreen_local_real_release(
    local_bluegreen: tuple[Path, dict[str, str], Path, str],
) -> None:
    inventory, env, _workdir, lb = local_bluegreen
    base = ("run", "playbooks/bluegreen_local.py", "-i", str(inventory))
    args = (*base, "-e", "version=1.0.0")
    checked = _cli(*args, "--check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "would start HAProxy in" in checked.stdout  # and starts nothing
    assert "release sampleapp 1.0.0" in checked.stdout
    assert not LocalHAProxy(_workdir, bind=lb).running()

    real = _cli(*args, env=env)
    assert real.returncode == 0, real.stdout + real.stderr
    with urllib.request.urlopen(f"http://{lb}/version", timeout=5) as r:
        assert "1.0.0" in r.read().decode()
    status = _cli("status", "sampleapp", "--format", "json", env=env)
    assert status.returncode == 0, status.stderr
    assert "1.0.0" in status.stdout

    # -e version=1.1.0 releases 1.1.0 (not the version already live), with the
    # pipeline's labels and the build's sha256 in the history.
    newer = _cli(*base, "-e", "version=1.1.0", "--meta", "commit=abc123", env=env)
    assert newer.returncode == 0, newer.stdout + newer.stderr
    with urllib.request.urlopen(f"http://{lb}/version", timeout=5) as r:
        assert "1.1.0" in r.read().decode()
    hist = _cli("history", "sampleapp", "--format", "json", "--env", "production", env=env)
    assert hist.returncode == 0, hist.stderr
    last = json.loads(hist.stdout)[-1]
    serve = REPO / "sampleapp" / "serve-local"
    assert (last["version"], last["outcome"], last["environment"]) == (
        "1.1.0",
        "succeeded",
        "production",
    )
    assert last["metadata"] == {"commit": "abc123"}
    assert last["build_sha256"] == hashlib.sha256(serve.read_bytes()).hexdigest()

    again = _cli(*base, "-e", "version=1.1.0", env=env)
    assert again.returncode == 0, again.stderr
    assert "already live" in again.stdout

    # The canary example, in check mode on top of that live release, then for real with a
    # short pause: no traffic at all makes the analysis inconclusive, which the example
    # answers with a gate; 'cdlib promote' is not sent, so the check run is what we keep.
    canary = ("run", "playbooks/canary_local.py", "-i", str(inventory))
    cenv = {**env, "CDLIB_DEMO_VERSION": "1.2.0", "CDLIB_DEMO_PAUSE": "0.5"}  # env fallback
    predicted = _cli(*canary, "--check", env=cenv)
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert "would set weights" in predicted.stdout
    with urllib.request.urlopen(f"http://{lb}/version", timeout=5) as r:
        assert "1.1.0" in r.read().decode()  # check mode moved nothing
