"""A command's ``env`` travels as data: a secret in it never shows in a host's argv."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from pathlib import Path

import pytest

import cdlib
from cdlib import Play, Secret, tasks
from cdlib.connections.local import LocalConnection
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _cmdlines_holding(value: bytes) -> list[str]:
    """Every process's argv on this machine (the fleet's hosts run on it too) holding it."""
    found = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if value in p.read_bytes():
                found.append(p.parent.name)
        except OSError:
            continue
    return found


@pytest.mark.parametrize("resident", [True, False], ids=["resident-shell", "exec"])
def test_command_env_secret_never_in_argv(fleet: Fleet, tmp_path: Path, resident: bool) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(
        tmp_path / "inv.yml", hosts=[1], extra_vars={"cdlib_resident_shell": resident}
    )
    value = "s3cret-" + secrets.token_hex(12)
    play = Play("env", hosts="all", vars={"token": Secret(value)})
    # The command reads its own stdin after the environment (cat), and proves it sees
    # the variable without printing it.
    play.task(
        tasks.command(
            'sleep 2; printf %s "$TOKEN" | sha256sum; cat',
            env={"TOKEN": "{{ token }}"},
            stdin="own stdin\n",
        )
    )
    out: list[cdlib.RunResult] = []
    t = threading.Thread(target=lambda: out.append(cdlib.run(play, inv)))
    t.start()
    seen: list[str] = []
    deadline = time.monotonic() + 1.8
    while time.monotonic() < deadline:
        seen += _cmdlines_holding(value.encode())
        time.sleep(0.05)
    t.join(60)
    assert not seen, f"secret in the argv of pids {sorted(set(seen))}"
    (result,) = out
    assert result.ok
    stdout = "\n".join(r.msg or "" for r in result.results)
    assert hashlib.sha256(value.encode()).hexdigest() in stdout
    assert "own stdin" in stdout


def test_local_env_secret_never_in_argv() -> None:
    value = "s3cret-" + secrets.token_hex(12)
    conn = LocalConnection("localhost")
    res: list[str] = []
    t = threading.Thread(
        target=lambda: res.append(
            conn.run('sleep 1; printf %s "$K"; cat', env={"K": value}, stdin=b"|in").stdout
        )
    )
    t.start()
    time.sleep(0.5)
    assert not _cmdlines_holding(value.encode())
    t.join(30)
    assert res == [value + "|in"]
