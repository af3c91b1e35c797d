"""Start-up cost: a run imports only what it uses (no boto3 without AWS, no rich off a tty)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import contextlib, io, sys
from cdlib.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(["run", sys.argv[1]])
heavy = sorted(m for m in ("boto3", "botocore", "rich", "moto") if m in sys.modules)
print(rc, ",".join(heavy) or "-", "PLAY RECAP" in out.getvalue())
"""


def test_local_run_off_a_terminal_imports_no_aws_and_no_rich(tmp_path: Path) -> None:
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('probe', hosts='all')\n"
        "play.task(tasks.command('true', read_only=True))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(pb)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "-", "True"], proc.stdout
