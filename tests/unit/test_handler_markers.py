"""Where handler markers go: never into a directory other users share."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cdlib.facts.handlers import PendingHandlersFact, mark_command


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="runs a command as nobody"
)
def test_without_home_and_var_lib_there_are_no_markers(tmp_path: Path) -> None:
    shared = Path("/tmp/.cache/cdlib/handlers")
    existed = shared.exists()
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"]
    play = f"markers {tmp_path}"
    done = subprocess.run(
        [*as_nobody, f"( {mark_command(play, ['h'])}\n) 2>/dev/null; echo $?"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() != "0"  # refused, not written to a shared /tmp
    assert shared.exists() == existed
    read = subprocess.run(
        [*as_nobody, PendingHandlersFact(play).command()], env=env, capture_output=True, text=True
    )
    assert PendingHandlersFact(play).parse(read.stdout, read.returncode) == frozenset()
