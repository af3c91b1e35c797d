"""The human output of a 30-host run: live progress on a terminal, plain text in a pipe.

The run goes through ``cdlib run`` as a user starts it: once on a pseudo-terminal (rich
live view, colours) and once into a pipe (plain text, no escape codes), both grouped per
task with hosts sorted, and the recap sorted by host.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HOSTS = [f"web{i}" for i in range(1, 31)]
#: Colours vanish; cursor moves and line erases (the live view redrawing) end a line.
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
MOVE = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\r")


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    inv = {
        "all": {
            "vars": {"ansible_connection": "local"},
            "hosts": {h: {"dir": str(tmp_path / "hosts" / h)} for h in HOSTS},
        }
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inv))
    (tmp_path / "pb.py").write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('fleet', hosts='all')\n"
        "play.task(tasks.directory('{{ dir }}'))\n"
        "play.task(tasks.command('sleep 0.3', name='wait a bit'))\n"
        "play.task(tasks.file('{{ dir }}/ok', content='hi'))\n"
    )
    return tmp_path / "pb.py", tmp_path / "inventory.yml"


def _argv(pb: Path, inv: Path) -> list[str]:
    return [sys.executable, "-m", "cdlib", "run", str(pb), "-i", str(inv), "--forks", "6"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env.update(PYTHONPATH=str(REPO), TERM="xterm-256color", COLUMNS="160", LINES="50")
    env.pop("TTY_COMPATIBLE", None)
    return env


def _on_a_terminal(argv: list[str]) -> tuple[int, str]:
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=_env())
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def _check_grouped(text: str) -> None:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for task in ("directory", "wait a bit", "file"):
        head = next(i for i, ln in enumerate(lines) if ln.startswith("TASK [") and task in ln)
        assert "30/30 host(s)" in lines[head], lines[head]
        block = lines[head + 1 : head + 31]
        # 30 lines in a row, one per host, in natural host order, each with its duration.
        hosts = [re.search(r"\[(web\d+)\]", ln).group(1) for ln in block]  # type: ignore[union-attr]
        assert hosts == HOSTS, block
        assert all(re.search(r" \d+\.\d\ds$", ln) for ln in block), block
    recap = lines[lines.index("PLAY RECAP") + 1 :]
    assert [ln.split()[0] for ln in recap] == HOSTS


def test_pipe_output_is_plain_grouped_and_sorted(tmp_path: Path) -> None:
    pb, inv = _setup(tmp_path)
    proc = subprocess.run(_argv(pb, inv), capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout and "running" not in proc.stdout
    _check_grouped(proc.stdout)


def test_terminal_shows_live_progress_then_the_same_groups(tmp_path: Path) -> None:
    pb, inv = _setup(tmp_path)
    code, raw = _on_a_terminal(_argv(pb, inv))
    assert code == 0, raw
    assert "\x1b[" in raw  # rich drew colours and the live view
    text = MOVE.sub("\n", COLOUR.sub("", raw))
    # The live line of the slow task, with hosts done out of 30 while it ran.
    done = [int(n) for n in re.findall(r"running wait a bit (\d+)/30 host\(s\)", text)]
    assert done and min(done) < 30, text[-2000:]
    # The live view was transient: the final screen holds the grouped blocks.
    final = "\n".join(ln.strip() for ln in text.splitlines() if "running " not in ln)
    _check_grouped(final)
