"""The local transport, stdin, env, timeouts and sudo."""

from __future__ import annotations

import os
import shutil

import pytest

from cdlib.api import Become, LocalConnection


def test_run_stdin_env_and_counts() -> None:
    c = LocalConnection()
    r = c.run("cat; echo $FOO", stdin=b"in\n", env={"FOO": "a b"})
    assert r.ok and r.stdout == "in\na b\n"
    assert c.run("exit 7").exit_code == 7
    assert c.run("sleep 5", timeout=0.2).exit_code == 124
    assert c.stats.commands == 3 and c.stats.round_trips == 3


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sudo"), reason="needs root and sudo")
def test_become_runs_as_other_user() -> None:
    c = LocalConnection(become=Become(user="nobody"))
    assert c.run("id -un").stdout.strip() == "nobody"
    same = LocalConnection(become=Become(user="root"))
    assert same.run("id -un").stdout.strip() == "root"
