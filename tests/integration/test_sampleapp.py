"""The sample app as a real process on a free port, and its reproducible release tarball."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.sample_app import APP, build_release, http_get, run_app


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_build_is_reproducible(tmp_path: Path) -> None:
    a = build_release("1.2.3", tmp_path / "a")
    b = build_release("1.2.3", tmp_path / "b")
    assert a.name == "sampleapp-1.2.3.tar.gz"
    assert _sha(a) == _sha(b)
    assert (tmp_path / "a" / "sampleapp-1.2.3.tar.gz.sha256").read_text() == (
        f"{_sha(a)}  sampleapp-1.2.3.tar.gz\n"
    )
    assert _sha(build_release("1.2.4", tmp_path / "c")) != _sha(a)
    assert _sha(build_release("1.2.3", tmp_path / "d", fail_mode="health")) != _sha(a)
    with tarfile.open(a) as tar:
        assert sorted(tar.getnames()) == ["VERSION", "app.py", "bin", "bin/start"]
        version = tar.extractfile("VERSION")
        assert version is not None and version.read() == b"1.2.3\n"
        assert tar.getmember("bin/start").mode == 0o755
        assert {m.mtime for m in tar.getmembers()} == {1704067200}


def test_build_rejects_bad_version(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"version '\.\./x'"):
        build_release("../x", tmp_path)
    assert not list(tmp_path.iterdir())


def test_serves_health_version_and_root() -> None:
    with run_app({"APP_VERSION": "2.0.0", "APP_COLOR": "green"}) as (_, url):
        health = http_get(url + "/health")
        assert health.status == 200
        assert json.loads(health.body) == {"status": "ok", "version": "2.0.0"}
        version = http_get(url + "/version")
        assert (version.status, version.body) == (200, "2.0.0\n")
        root = json.loads(http_get(url + "/").body)
        assert root["version"] == "2.0.0"
        assert root["color"] == "green"
        assert root["hostname"]
        assert http_get(url + "/nope").status == 404


def test_release_tarball_runs_with_version_from_file(tmp_path: Path) -> None:
    tarball = build_release("3.1.0", tmp_path / "dist")
    rel = tmp_path / "rel"
    with tarfile.open(tarball) as tar:
        tar.extractall(rel, filter="data")
    with run_app({"APP_VERSION": ""}, argv=[str(rel / "bin" / "start")]) as (proc, url):
        assert http_get(url + "/version").body == "3.1.0\n"
        assert proc.pid  # bin/start execs python: the pid is the app's own


def test_baked_fail_mode_release_fails_health(tmp_path: Path) -> None:
    tarball = build_release("3.1.1", tmp_path / "dist", fail_mode="health")
    rel = tmp_path / "rel"
    with tarfile.open(tarball) as tar:
        tar.extractall(rel, filter="data")
    with run_app({"APP_FAIL_MODE": ""}, argv=[str(rel / "bin" / "start")]) as (_, url):
        assert http_get(url + "/health").status == 503
        assert http_get(url + "/version").status == 200


def test_fail_mode_health() -> None:
    with run_app({"APP_FAIL_MODE": "health"}) as (_, url):
        res = http_get(url + "/health")
        assert res.status == 503
        assert json.loads(res.body)["status"] == "failing"


def test_fail_mode_5xx() -> None:
    with run_app({"APP_FAIL_MODE": "5xx"}) as (_, url):
        assert http_get(url + "/health").status == 500
        assert http_get(url + "/").status == 500


def test_fail_mode_slow_still_answers() -> None:
    with run_app({"APP_FAIL_MODE": "slow", "APP_SLOW_MS": "50"}) as (_, url):
        assert http_get(url + "/health").status == 200


def test_fail_mode_crash_exits_nonzero() -> None:
    res = subprocess.run(
        [sys.executable, str(APP)],
        env={"APP_FAIL_MODE": "crash", "APP_PORT": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 3
    assert "APP_FAIL_MODE=crash" in res.stderr


def test_unknown_fail_mode_is_a_clear_error() -> None:
    res = subprocess.run(
        [sys.executable, str(APP)],
        env={"APP_FAIL_MODE": "bogus"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2
    assert "APP_FAIL_MODE='bogus'" in res.stderr


def test_sigterm_finishes_in_flight_request() -> None:
    with run_app({"APP_FAIL_MODE": "slow", "APP_SLOW_MS": "1500"}) as (proc, url):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=15) as client:
            client.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            # Signal only once the app has accepted this very connection: a request still in
            # the listen backlog is (rightly) dropped when the app stops accepting.
            # Bounded generously: on a loaded machine the app may take a while to accept.
            deadline = time.monotonic() + 60
            while not _accepted(port, client.getsockname()[1]) and time.monotonic() < deadline:
                time.sleep(0.005)
            assert _accepted(port, client.getsockname()[1]), "the app never accepted"
            proc.send_signal(signal.SIGTERM)
            answer = b""
            for _ in range(1000):
                chunk = client.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200"), answer
        assert proc.wait(timeout=15) == 0
        assert proc.stdout is not None
        out = proc.stdout.read()
        assert "GET /health" in out
        assert "sampleapp stopped" in out


def _accepted(server_port: int, client_port: int) -> bool:
    """Whether the server side of the connection from ``client_port`` has been accept()ed.

    In /proc/net/tcp a connection still in the listen backlog has inode 0.
    """
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local_port = int(f[1].split(":")[1], 16)
        remote_port = int(f[2].split(":")[1], 16)
        if local_port == server_port and remote_port == client_port:
            return f[9] != "0"
    return False


def test_flags_file_is_read_and_reloaded(tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text('{"new_checkout": true}')
    with run_app({"APP_FLAGS_FILE": str(flags)}) as (_, url):
        assert json.loads(http_get(url + "/").body)["flags"] == {"new_checkout": True}
        flags.write_text('{"new_checkout": false, "dark": "on"}')
        assert json.loads(http_get(url + "/").body)["flags"] == {
            "new_checkout": False,
            "dark": "on",
        }
