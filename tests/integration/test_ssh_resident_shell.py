"""The resident shell (cdlib.connections.resident) on real sshd hosts.

Commands are framed over one session channel; these tests try to make the framing slip
(binary stdin, stdin left unread, output without a newline, big stderr, timeouts, a
command that kills the shell, several threads at once) and check every result.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from cdlib.connections.base import UnreachableError
from cdlib.connections.ssh import SSHConnection
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _conn(fleet: Fleet, k: int = 1, **kw: object) -> SSHConnection:
    h = fleet.host(k)
    return SSHConnection(
        h.name,
        address=h.address,
        user="root",
        key_file=str(fleet.key_file),
        known_hosts=str(fleet.known_hosts),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def conn(fleet: Fleet) -> SSHConnection:
    c = _conn(fleet)
    yield c  # type: ignore[misc]
    c.close()


def _shell_pid(c: SSHConnection) -> str:
    """The pid of the resident loop shell (the parent of each command's sh)."""
    return c.run("echo $PPID").stdout.strip()


def test_commands_share_one_shell(conn: SSHConnection) -> None:
    first = _shell_pid(conn)
    assert first.isdigit()
    for _ in range(3):
        assert _shell_pid(conn) == first


def test_output_stderr_and_exit_codes_are_exact(conn: SSHConnection) -> None:
    r = conn.run("printf abc")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "abc", "")
    r = conn.run("printf 'abc\\n\\n'")
    assert r.stdout == "abc\n\n"
    r = conn.run("echo out; echo err >&2; printf e2 >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\ne2")
    assert conn.run("exit 255").exit_code == 255
    # The command runs in its own shell: exit, exec and cd do not touch the loop.
    assert conn.run("cd /; exec true").exit_code == 0
    assert conn.run("pwd").stdout.strip() == "/root"


def test_binary_stdin_arrives_byte_for_byte(conn: SSHConnection) -> None:
    for data in (b"\x00\x01\xffno newline", os.urandom(3 * 1024 * 1024 + 7), b"x"):
        r = conn.run("sha256sum", stdin=data)
        assert r.ok
        assert r.stdout.split()[0] == hashlib.sha256(data).hexdigest()


def test_stdin_left_unread_does_not_slip_the_framing(conn: SSHConnection) -> None:
    pid = _shell_pid(conn)
    # head reads 3 bytes and exits; `true` reads nothing: the rest must be drained.
    r = conn.run("head -c 3", stdin=b"abcdef\n" * 100_000)
    assert r.stdout == "abc"
    assert conn.run("true", stdin=b"7 0\nexit 9\n" * 1000).exit_code == 0
    r = conn.run("echo still here")
    assert (r.exit_code, r.stdout) == (0, "still here\n")
    assert _shell_pid(conn) == pid


def test_commands_never_read_the_channel(conn: SSHConnection) -> None:
    # With no stdin given, a command reading stdin sees end of file, not later frames.
    r = conn.run("cat; echo done")
    assert (r.exit_code, r.stdout) == (0, "done\n")


def test_big_stdout_and_stderr_together_do_not_deadlock(conn: SSHConnection) -> None:
    r = conn.run(
        "head -c 3000000 /dev/zero | tr '\\0' e >&2; head -c 3000000 /dev/zero | tr '\\0' o",
        timeout=60,
    )
    assert r.ok
    assert len(r.stderr) == 3_000_000 and set(r.stderr) == {"e"}
    assert len(r.stdout) == 3_000_000 and set(r.stdout) == {"o"}


def test_timeout_gives_124_and_the_next_command_gets_a_new_shell(conn: SSHConnection) -> None:
    pid = _shell_pid(conn)
    r = conn.run("sleep 30", timeout=0.5)
    assert r.exit_code == 124 and "timed out" in r.stderr
    after = _shell_pid(conn)
    assert after.isdigit() and after != pid


def test_a_command_that_kills_the_shell_fails_alone(conn: SSHConnection) -> None:
    pid = _shell_pid(conn)
    r = conn.run("echo partial; kill -9 $PPID; sleep 5")
    assert r.exit_code == 255
    assert "partial" in r.stdout
    assert "remote shell ended" in r.stderr
    again = conn.run("echo fine")
    assert again.stdout == "fine\n"
    assert _shell_pid(conn) != pid


def test_threads_at_once_all_get_their_own_results(conn: SSHConnection) -> None:
    results: dict[int, str] = {}

    def one(i: int) -> None:
        results[i] = conn.run(f"sleep 0.1; echo {i}", stdin=str(i).encode() * 10).stdout

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: f"{i}\n" for i in range(8)}
    assert conn.stats.commands == 8


def test_exec_mode_still_available(fleet: Fleet) -> None:
    c = _conn(fleet, resident_shell=False)
    try:
        pids = {c.run("echo $$").stdout for _ in range(2)}
        assert len(pids) == 2  # a fresh session per command
        assert (
            c.run("sha256sum", stdin=b"abc").stdout.split()[0] == hashlib.sha256(b"abc").hexdigest()
        )
    finally:
        c.close()


def test_host_dying_mid_command_is_unreachable(fleet: Fleet) -> None:
    c = _conn(fleet, 2)
    try:
        assert c.run("true").ok
        out: list[BaseException] = []

        def slow() -> None:
            try:
                c.run("touch /srv/resident-started; sleep 20")
            except BaseException as exc:
                out.append(exc)

        started = fleet.path(2, "/srv/resident-started")
        started.unlink(missing_ok=True)
        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 10
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started.exists()
        fleet.stop_host(2)
        t.join(15)
        assert not t.is_alive()
        assert out and isinstance(out[0], UnreachableError)
    finally:
        c.close()
        fleet.start_host(2)


def test_commands_run_in_sh_with_the_login_shells_environment(
    fleet: Fleet, conn: SSHConnection
) -> None:
    # /bin/sh runs every command (as on the local transport), in both modes; the
    # environment is the one the login shell's start-up files made.
    probe = 'echo "bash=${BASH_VERSION:-no} path=$PATH"; readlink /proc/$$/exe'
    plain = _conn(fleet, resident_shell=False)
    try:
        expected = plain.run(probe).stdout
    finally:
        plain.close()
    assert "bash=no" in expected
    assert conn.run(probe).stdout == expected
