"""The ``cdlib`` command's errors: one format, one exit-code table, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_ctrl_c_exits_99_after_the_running_task(tmp_path: Path) -> None:
    started, done, after = tmp_path / "started", tmp_path / "done", tmp_path / "after"
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "p = Play('slow', hosts='localhost')\n"
        f"p.task(tasks.command('touch {started} && sleep 2 && touch {done}'))\n"
        f"p.task(tasks.command('touch {after}'))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdlib", "run", str(pb)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 99, err
    assert "interrupted" in err and "waiting for the tasks running" in err
    assert "Traceback" not in err
    assert done.exists() and not after.exists()  # the running task finished; no new one
