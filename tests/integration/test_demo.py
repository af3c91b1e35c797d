"""scripts/demo's pieces: an inventory moved by the environment, and a teardown that leaves
nothing listening (a second demo, or the test suite, must not meet a busy port)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CTL = REPO / "scripts" / "demo_ctl.py"
SHIPPED = REPO / "inventories" / "bluegreen-local.yml"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _offset() -> int:
    """A port offset under which the demo's four app ports and its LB port are all free."""
    ports = [
        int(hv["app_port"])
        for g in yaml.safe_load(SHIPPED.read_text())["all"]["children"].values()
        for hv in g["hosts"].values()
    ]
    # Every port stays below Linux's ephemeral range (32768 and up): a port picked there can be
    # taken by any outgoing connection of a parallel test between this check and the app's bind.
    for offset in range(10000 + os.getpid() % 1000 * 10, 32768 - max(*ports, 8480), 97):
        if all(_free(p + offset) for p in [*ports, 8480]):
            return offset
    raise AssertionError("no free ports for the demo")


def _env(tmp_path: Path, offset: int) -> dict[str, str]:
    return {
        **os.environ,
        "CDLIB_DEMO_ROOT": str(tmp_path / "demo"),
        "CDLIB_DEMO_PORT_OFFSET": str(offset),
        "CDLIB_DEMO_LB": f"127.0.0.1:{8480 + offset}",
        "CDLIB_DEMO_DIR": str(tmp_path / "demo" / "haproxy"),
        "CDLIB_STATE_DIR": str(tmp_path / "demo" / "state"),
        "CDLIB_DEMO_VERSION": "1.0.0",
    }


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=180)


def test_inventory_moves_with_the_environment(tmp_path: Path) -> None:
    env = _env(tmp_path, 1000)
    out = _run([sys.executable, str(CTL), "inventory"], env)
    assert out.returncode == 0, out.stderr
    inv = yaml.safe_load(Path(out.stdout.strip()).read_text())
    shipped = yaml.safe_load(SHIPPED.read_text())
    blue1 = inv["all"]["children"]["blue"]["hosts"]["blue1"]
    assert blue1 == {
        "app_port": shipped["all"]["children"]["blue"]["hosts"]["blue1"]["app_port"] + 1000,
        "app_dir": str(tmp_path / "demo" / "blue1"),
    }
    assert inv["all"]["vars"] == shipped["all"]["vars"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")
def test_stop_leaves_nothing_listening(tmp_path: Path) -> None:
    offset = _offset()
    env = _env(tmp_path, offset)
    inv = _run([sys.executable, str(CTL), "inventory"], env).stdout.strip()
    try:
        run = _run(
            [sys.executable, "-m", "cdlib", "run", "playbooks/bluegreen_local.py", "-i", inv], env
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert _listening(8480 + offset)  # HAProxy serves
        assert _listening(9101 + offset)  # the first release went live on blue
    finally:
        stop = _run([sys.executable, str(CTL), "stop"], env)
    assert stop.returncode == 0, stop.stderr
    assert "demo stopped" in stop.stdout
    for port in (8480, 9101, 9102, 9201, 9202):
        assert not _listening(port + offset), f"port {port + offset} still listening after stop"
