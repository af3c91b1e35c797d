"""Host keys checked as OpenSSH checks them, and hung hosts, on the real sshd fleet."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import cdlib
from cdlib import Play, Status, tasks
from cdlib.connections import known_hosts as kh
from cdlib.connections.base import UnreachableError
from cdlib.connections.factory import ConnectionOptions
from cdlib.connections.ssh import HostKeyPolicy, SSHConnection
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _conn(fleet: Fleet, k: int, known: Path) -> SSHConnection:
    h = fleet.host(k)
    return SSHConnection(
        h.name,
        address=h.address,
        user="root",
        key_file=str(fleet.key_file),
        known_hosts=str(known),
    )


def test_changed_key_is_refused_and_a_fixed_file_is_reread(fleet: Fleet, tmp_path: Path) -> None:
    lines = fleet.known_hosts.read_text().splitlines()
    addr1, addr2 = fleet.host(1).address, fleet.host(2).address
    right = [ln for ln in lines if ln.startswith(addr1 + " ")]
    other = [ln for ln in lines if ln.startswith(addr2 + " ")]
    assert right and other
    known = tmp_path / "known_hosts"
    # host1's address listed with host2's key (and not with its own, which would win
    # as it does for OpenSSH): a changed key must be refused ...
    rest = [ln for ln in lines if ln not in right]
    known.write_text(other[0].replace(addr2, addr1, 1) + "\n" + "\n".join(rest) + "\n")
    with pytest.raises(UnreachableError, match=f"CHANGED.*offending key in {known}:1"):
        _conn(fleet, 1, known).connect()
    # ... while host2, listed right in the same (cached) file, connects.
    c2 = _conn(fleet, 2, known)
    try:
        assert c2.run("echo ok").stdout == "ok\n"
    finally:
        c2.close()
    # The file is fixed while the process runs: the next connection sees the fix.
    known.write_text("\n".join(lines) + "\n")
    c1 = _conn(fleet, 1, known)
    try:
        assert c1.run("echo ok").stdout == "ok\n"
    finally:
        c1.close()


def test_host_missing_from_the_file_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    addr1 = fleet.host(1).address
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(ln + "\n" for ln in fleet.known_hosts.read_text().splitlines() if addr1 not in ln)
    )
    with pytest.raises(UnreachableError, match="unknown"):
        _conn(fleet, 1, known).connect()


# -- OpenSSH's files: ~/.ssh/config's UserKnownHostsFile, with HOME in a temp dir -------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own: ~/.ssh/known_hosts is never the real one."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    return h


def _ssh_config(home: Path, text: str) -> None:
    (home / ".ssh").mkdir(mode=0o700, exist_ok=True)
    (home / ".ssh" / "config").write_text(text)


def _home_conn(fleet: Fleet, k: int, policy: HostKeyPolicy, **kw: Any) -> SSHConnection:
    h = fleet.host(k)
    return SSHConnection(
        h.name,
        address=h.address,
        user="root",
        key_file=str(fleet.key_file),
        host_key_policy=policy,
        **kw,
    )


def _fleet_line(fleet: Fleet, k: int) -> str:
    addr = fleet.host(k).address
    return next(ln for ln in fleet.known_hosts.read_text().splitlines() if ln.split()[0] == addr)


def _echo(conn: SSHConnection) -> str:
    try:
        return conn.run("echo ok").stdout
    finally:
        conn.close()


def test_strict_refuses_a_host_no_known_hosts_file_lists(fleet: Fleet, home: Path) -> None:
    with pytest.raises(
        UnreachableError, match=f"unknown: no ssh-ed25519 key.*{home}/.ssh/known_hosts"
    ):
        _home_conn(fleet, 1, "strict").connect()
    assert not (home / ".ssh").exists()  # strict records nothing


def test_strict_reads_the_users_known_hosts(fleet: Fleet, home: Path) -> None:
    (home / ".ssh").mkdir()
    (home / ".ssh" / "known_hosts").write_text(_fleet_line(fleet, 1) + "\n")
    assert _echo(_home_conn(fleet, 1, "strict")) == "ok\n"


def test_accept_new_records_in_the_user_file_from_ssh_config_once_per_host(
    fleet: Fleet, home: Path
) -> None:
    _ssh_config(home, "Host *\n    UserKnownHostsFile ~/kh/first %d/kh/second\n")
    conns = [_home_conn(fleet, h.index, "accept-new") for h in fleet.hosts]
    # Every host at once: appends from parallel connections must not clobber each other.
    with ThreadPoolExecutor(len(conns)) as pool:
        assert list(pool.map(_echo, conns)) == ["ok\n"] * len(conns)
    first = home / "kh" / "first"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert not (home / "kh" / "second").exists()
    assert not (home / ".ssh" / "known_hosts").exists()
    lines = first.read_text().splitlines()
    assert len(lines) == len(fleet.hosts)
    for h in fleet.hosts:
        want = _fleet_line(fleet, h.index).split()[1:3]
        # /etc/ssh/ssh_config may say HashKnownHosts; look the line up as ssh would.
        got = kh.lookup([str(first)], h.address)
        assert [[e.key_type, base64.b64encode(e.blob).decode()] for e in got] == [want]
    # The recorded keys are what a strict run (or OpenSSH itself) now trusts.
    assert _echo(_home_conn(fleet, 2, "strict")) == "ok\n"
    res = subprocess.run(
        [
            *fleet.ssh_command(2)[:-1],
            "-o",
            f"UserKnownHostsFile={first}",
            f"root@{fleet.host(2).address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    assert first.read_text().splitlines() == lines  # nothing recorded twice


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_changed_key_is_refused_naming_the_file_and_line(
    fleet: Fleet, home: Path, policy: HostKeyPolicy
) -> None:
    _ssh_config(home, "UserKnownHostsFile ~/.ssh/hosts\n")
    wrong = _fleet_line(fleet, 2).replace(fleet.host(2).address, fleet.host(1).address, 1)
    hosts = home / ".ssh" / "hosts"
    hosts.write_text(f"# a comment\n{_fleet_line(fleet, 3)}\n{wrong}\n")
    before = hosts.read_text()
    with pytest.raises(UnreachableError) as err:
        _home_conn(fleet, 1, policy).connect()
    msg = str(err.value)
    assert msg.startswith("host1: unreachable: host key for 127.0.")
    assert "CHANGED" in msg and "ssh-ed25519" in msg
    assert f"offending key in {hosts}:3" in msg
    assert hosts.read_text() == before  # accept-new did not add the new key


def test_off_accepts_a_changed_key(fleet: Fleet, home: Path) -> None:
    (home / ".ssh").mkdir()
    wrong = _fleet_line(fleet, 2).replace(fleet.host(2).address, fleet.host(1).address, 1)
    (home / ".ssh" / "known_hosts").write_text(wrong + "\n")
    assert _echo(_home_conn(fleet, 1, "off")) == "ok\n"


@pytest.mark.parametrize("policy", ["strict", "accept-new", "off"])
def test_a_revoked_key_is_refused_under_every_policy(
    fleet: Fleet, home: Path, policy: HostKeyPolicy
) -> None:
    (home / ".ssh").mkdir()
    _, key_type, b64 = _fleet_line(fleet, 1).split()
    (home / ".ssh" / "known_hosts").write_text(
        f"{_fleet_line(fleet, 1)}\n@revoked * {key_type} {b64}\n"
    )
    with pytest.raises(UnreachableError, match=rf"REVOKED in {home}/.ssh/known_hosts:2"):
        _home_conn(fleet, 1, policy).connect()


def test_host_known_with_another_key_type_is_new_as_openssh_says(
    fleet: Fleet, home: Path, tmp_path: Path
) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "other")], check=True
    )
    ecdsa = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    (home / ".ssh").mkdir()
    known = home / ".ssh" / "known_hosts"
    known.write_text(f"{fleet.host(1).address} {ecdsa}\n")
    with pytest.raises(
        UnreachableError, match=rf"unknown.*known with a ecdsa-sha2-nistp256 key in {known}:1"
    ):
        _home_conn(fleet, 1, "strict").connect()
    assert _echo(_home_conn(fleet, 1, "accept-new")) == "ok\n"
    assert len(known.read_text().splitlines()) == 2  # the Ed25519 key was added beside it


# -- hung hosts (item 14) --------------------------------------------------------


@contextlib.contextmanager
def _frozen(fleet: Fleet, k: int) -> Iterator[None]:
    """Every process of host k (its sshd, sessions, shells) stopped; continued after."""
    pids = fleet.processes(k)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_a_host_that_hangs_mid_run_is_unreachable_after_the_keepalive(fleet: Fleet) -> None:
    fleet.reset()
    conn = _conn(fleet, 1, fleet.known_hosts)
    conn.keepalive_interval, conn.keepalive_count = 0.5, 2
    try:
        assert conn.run("echo ok").stdout == "ok\n"
        with _frozen(fleet, 1):
            t0 = time.monotonic()
            with pytest.raises(
                UnreachableError, match="host1: unreachable: no answer to keepalive"
            ):
                conn.run("echo ok")
            assert time.monotonic() - t0 < 10
    finally:
        conn.close()


def test_a_hung_host_is_unreachable_at_connect_and_the_run_goes_on(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1, 2, 3])
    play = Play("hung", hosts="all")
    play.task(tasks.command("echo ok"))
    with _frozen(fleet, 2):
        t0 = time.monotonic()
        res = cdlib.run(play, inv, connection_options=ConnectionOptions(connect_timeout=2))
        took = time.monotonic() - t0
    assert took < 20
    assert res.exit_code == cdlib.EXIT_UNREACHABLE == 3
    assert res.unreachable_hosts == ["host2"]
    by_host = {r.host: r for r in res.results}
    assert "no SSH handshake from 127.0." in by_host["host2"].msg
    assert "within 2s" in by_host["host2"].msg
    assert by_host["host1"].status is Status.CHANGED
    assert by_host["host3"].status is Status.CHANGED


def test_cli_reports_a_hung_host_unreachable_with_exit_3(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1, 2, 3])
    book = tmp_path / "book.py"
    book.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('hung', hosts='all')\n"
        "play.task(tasks.command('echo ok'))\n"
    )
    opts = ("--connect-timeout", "2", "--command-timeout", "30", "--keepalive-interval", "1")
    with _frozen(fleet, 3):
        proc = subprocess.run(
            [sys.executable, "-m", "cdlib", "run", str(book), "-i", str(inv), *opts],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "host3" in proc.stdout and "no SSH handshake" in proc.stdout
    for other in ("host1", "host2"):
        assert re.search(rf"^{other} : ok=1 .* unreachable=0 ", proc.stdout, re.M), proc.stdout
