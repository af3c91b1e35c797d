"""The ``cdlib`` command's errors: one format, one exit-code table, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _reset_server(address: str) -> tuple[int, object]:
    """A TCP listener on loopback that answers like a web server and hangs up."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind((address, 0))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv


def _playbook(tmp_path: Path, body: str) -> str:
    pb = tmp_path / "pb.py"
    pb.write_text("from cdlib import Play, Secret, tasks\n" + body)
    return str(pb)


CASES = {
    "missing secret": (
        "p = Play('p', hosts='localhost', vars={'pw': Secret.from_env('CDLIB_T_NO_SUCH')})\n"
        "p.task(tasks.command('true'))\n",
        [],
        4,
        "secret environment variable CDLIB_T_NO_SUCH is not set",
    ),
    "cdlib error while loading": (
        "from cdlib.traffic.base import RouterInputError\n"
        "raise RouterInputError(\"weights: unknown group 'purple' (known: blue, green)\")\n",
        [],
        4,
        "pb.py:3: weights: unknown group 'purple'",
    ),
    "missing key file": (
        "p = Play('p', hosts='all')\np.task(tasks.command('true'))\n",
        ["-i", "127.0.3.21,", "-e", "ansible_ssh_private_key_file=/nonexistent/id_cd"],
        4,
        "host 127.0.3.21: ansible_ssh_private_key_file '/nonexistent/id_cd' does not exist",
    ),
    "not an SSH port": (
        "p = Play('p', hosts='all')\np.task(tasks.command('true'))\n",
        ["-i", "127.0.3.21,", "-e", "ansible_port=PORT", "--host-key-policy", "off"],
        3,
        "closed the connection without an SSH greeting",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_run_errors_one_format_one_exit_code(tmp_path: Path, case: str) -> None:
    body, extra, code, message = CASES[case]
    server = None
    if "ansible_port=PORT" in extra:
        port, server = _reset_server("127.0.3.21")
        extra = [a.replace("PORT", str(port)) for a in extra]
    proc = subprocess.run(
        [sys.executable, "-m", "cdlib", "run", _playbook(tmp_path, body), *extra],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    if server is not None:
        server.close()  # type: ignore[attr-defined]
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert message in out
    assert "Traceback" not in out and "Error:" not in out.replace("ERROR:", "")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("unlock", "release lock of 'shop' is not held"),
        ("promote", "no running release of 'shop' to promote"),
        ("abort", "no running release of 'shop' to abort"),
    ],
)
def test_release_commands_with_nothing_to_act_on_exit_2(
    tmp_path: Path, command: str, message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cdlib", command, "shop", "--state-dir", str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"cdlib {command}: {message}\n"


def test_tracebacks_only_with_vvv(tmp_path: Path) -> None:
    body = "raise RuntimeError('boom')\n"
    pb = _playbook(tmp_path, body)
    quiet = subprocess.run(
        [sys.executable, "-m", "cdlib", "run", pb], env=_env(), capture_output=True, text=True
    )
    loud = subprocess.run(
        [sys.executable, "-m", "cdlib", "run", "-vvv", pb],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == loud.returncode == 4
    assert "RuntimeError: boom" in quiet.stderr and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
