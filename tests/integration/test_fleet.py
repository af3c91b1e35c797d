"""The SSH test fleet against real sshd: login, per-host private dirs, stop/start."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.fleet import Fleet, FleetError

pytestmark = pytest.mark.fleet


def _ssh(fleet: Fleet, k: int, cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*fleet.ssh_command(k), cmd], capture_output=True, text=True, timeout=30)


def test_every_host_accepts_key_login_with_strict_host_keys(fleet: Fleet) -> None:
    fleet.reset()
    for h in fleet.hosts:
        res = subprocess.run(
            [
                "ssh",
                "-i",
                str(fleet.key_file),
                "-o",
                f"UserKnownHostsFile={fleet.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"root@{h.address}",
                "id -u",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 0, f"{h.name}: {res.stderr}"
        assert res.stdout.strip() == "0"


def test_wrong_host_key_is_rejected(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    # host1's address paired with host2's key: strict checking must refuse.
    lines = fleet.known_hosts.read_text().splitlines()
    swapped = tmp_path / "known_hosts"
    swapped.write_text(fleet.hosts[0].address + " " + lines[1].split(" ", 1)[1] + "\n")
    res = subprocess.run(
        [
            "ssh",
            "-i",
            str(fleet.key_file),
            "-o",
            f"UserKnownHostsFile={swapped}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            f"root@{fleet.hosts[0].address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in res.stderr


def test_srv_is_private_per_host(fleet: Fleet) -> None:
    fleet.reset()
    res = _ssh(fleet, 1, "mkdir -p /srv/app && echo one > /srv/app/marker && echo t > /tmp/t")
    assert res.returncode == 0, res.stderr
    assert fleet.ssh(1, "cat /srv/app/marker").stdout == "one\n"
    assert fleet.path(1, "/srv/app/marker").read_text() == "one\n"
    assert fleet.ssh(2, "test -e /srv/app/marker").returncode == 1
    assert _ssh(fleet, 2, "test -e /srv/app/marker").returncode == 1
    assert not Path("/srv/app/marker").exists()  # nor on the machine itself
    for d in ("/opt", "/var/lib/cdlib", "/etc/cdlib-host"):
        fleet.ssh(3, f"touch {d}/mine", check=True)
        assert fleet.ssh(4, f"test -e {d}/mine").returncode == 1


def test_root_home_is_a_fresh_debian_one_per_host(fleet: Fleet) -> None:
    # The hosts never run this machine's dotfiles (a developer's pyenv or nvm setup).
    seed = Path("/usr/share/base-files/dot.bashrc")
    got = _ssh(fleet, 1, "cat ~/.bashrc; touch ~/host1-was-here")
    assert got.returncode == 0, got.stderr
    if seed.is_file():
        assert got.stdout == seed.read_text()
    assert fleet.ssh(2, "test -e /root/host1-was-here").returncode == 1
    assert not Path("/root/host1-was-here").exists()


def test_reset_empties_private_dirs_and_kills_leftovers(fleet: Fleet) -> None:
    fleet.reset()
    fleet.ssh(1, "cat > /srv/left", input="x\n", check=True)
    assert fleet.path(1, "/srv/left").read_text() == "x\n"
    fleet.ssh(1, "setsid sleep 300 >/dev/null 2>&1 < /dev/null &", check=True)
    # The background sleep may not have started when the shell returns: wait for it.
    deadline = time.monotonic() + 10
    while len(fleet.processes(1)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fleet.processes(1)) >= 2
    fleet.reset()
    assert fleet.ssh(1, "test -e /srv/left").returncode == 1
    assert fleet.processes(1) == [fleet.pid(1)]


def test_stopped_host_refuses_then_comes_back(fleet: Fleet) -> None:
    fleet.reset()
    # The tracked pid is sshd itself (unshare and sh exec'd into it), so stopping it works.
    assert Path(f"/proc/{fleet.pid(3)}/exe").resolve() == Path("/usr/sbin/sshd")
    fleet.stop_host(3)
    assert not fleet.is_running(3)
    res = _ssh(fleet, 3, "true")
    assert res.returncode == 255
    assert "refused" in res.stderr
    assert _ssh(fleet, 4, "true").returncode == 0
    with pytest.raises(FleetError, match="host3: not running"):
        fleet.ssh(3, "true")
    fleet.start_host(3)
    assert _ssh(fleet, 3, "true").returncode == 0


def test_reset_restarts_stopped_hosts(fleet: Fleet) -> None:
    fleet.stop_host(5)
    fleet.reset()
    assert fleet.is_running(5)
    assert _ssh(fleet, 5, "true").returncode == 0


def test_inventory_yaml(fleet_inventory: Path, fleet: Fleet) -> None:
    data = yaml.safe_load(fleet_inventory.read_text())
    hosts = data["all"]["children"]["web"]["hosts"]
    assert list(hosts) == [f"host{k}" for k in range(1, 6)]
    assert hosts["host2"] == {
        "ansible_host": fleet.hosts[1].address,
        "ansible_port": 22,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(fleet.key_file),
        "cdlib_known_hosts_file": str(fleet.known_hosts),
    }


def test_inventory_loads_with_cdlib(fleet: Fleet, tmp_path: Path) -> None:
    from cdlib.inventory import load_inventory

    path = fleet.inventory_yaml(
        tmp_path / "inv.yml", groups={"web": [1, 2, 3], "db": [4]}, extra_vars={"app": "demo"}
    )
    inv = load_inventory([path])
    h1 = inv.get("host1")
    assert h1.address == fleet.hosts[0].address
    assert h1.key_file == str(fleet.key_file)
    assert h1.vars["app"] == "demo"
    assert "web" in h1.groups
    assert [h.name for h in inv.select("db")] == ["host4"]


def test_sample_app_release_runs_on_a_fleet_host(fleet: Fleet, tmp_path: Path) -> None:
    from tests.sample_app import build_release, free_port, http_get

    fleet.reset()
    tarball = build_release("9.9.9", tmp_path)
    h = fleet.host(2)
    port = free_port(h.address)
    unpack = subprocess.run(
        [*fleet.ssh_command(2), "mkdir -p /srv/app && tar -xzf - -C /srv/app"],
        input=tarball.read_bytes(),
        capture_output=True,
        timeout=30,
    )
    assert unpack.returncode == 0, unpack.stderr
    start = _ssh(
        fleet,
        2,
        f"APP_BIND={h.address} APP_PORT={port} APP_COLOR=blue setsid /srv/app/bin/start"
        " > /srv/app.log 2>&1 < /dev/null &",
    )
    assert start.returncode == 0, start.stderr
    for _ in range(100):
        try:
            res = http_get(f"http://{h.address}:{port}/")
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError(fleet.path(2, "/srv/app.log").read_text())
    assert res.status == 200
    assert '"color": "blue"' in res.body
    assert fleet.ssh(3, "test -e /srv/app/VERSION").returncode == 1
    fleet.reset()  # the app lives in host2's namespace: reset stops it
    with pytest.raises(OSError):
        http_get(f"http://{h.address}:{port}/", timeout=2)


@pytest.mark.skipif(not Path("/etc/supervisor").is_dir(), reason="supervisor not installed")
def test_each_host_runs_its_own_stock_supervisord(fleet: Fleet) -> None:
    fleet.reset()
    conf = "[program:sleeper]\ncommand=/bin/sleep 300\n"
    for k in (1, 2):
        assert fleet.path(k, "/etc/supervisor/supervisord.conf").is_file()  # seeded copy
        fleet.path(k, "/etc/supervisor/conf.d/sleeper.conf").write_text(conf)
        fleet.ssh(k, "supervisord -c /etc/supervisor/supervisord.conf", check=True)
    assert not Path("/etc/supervisor/conf.d/sleeper.conf").exists()
    for k in (1, 2):
        status = ""
        for _ in range(100):
            status = fleet.ssh(k, "supervisorctl status sleeper").stdout
            if "RUNNING" in status:
                break
            time.sleep(0.1)
        assert "RUNNING" in status, status
        assert fleet.path(k, "/run/supervisord.pid").is_file()
    pid1 = fleet.path(1, "/run/supervisord.pid").read_text()
    assert pid1 != fleet.path(2, "/run/supervisord.pid").read_text()
    fleet.reset()
    assert not fleet.path(1, "/etc/supervisor/conf.d/sleeper.conf").exists()
    assert fleet.processes(1) == [fleet.pid(1)]
    assert _gone(int(pid1))


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped by init counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def test_cli_up_and_down(fleet: Fleet, tmp_path: Path) -> None:
    # A second fleet beside the session one: same third octet, so no other run uses it.
    subnet = "127.200." + fleet.subnet.rsplit(".", 1)[1]
    wd = tmp_path.parent / (tmp_path.name + "-cli")  # not under /tmp: private /tmp too
    up = subprocess.run(
        [sys.executable, "-m", "tests.fleet", "up", "2", "--subnet", subnet, "--dir", str(wd)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert up.returncode == 0, up.stderr
        inv = Path(up.stdout.strip())
        data = yaml.safe_load(inv.read_text())
        host2 = data["all"]["children"]["web"]["hosts"]["host2"]
        assert host2["ansible_host"] == f"{subnet}.12"
        login = subprocess.run(
            [
                "ssh", "-i", host2["ansible_ssh_private_key_file"],
                "-o", f"UserKnownHostsFile={host2['cdlib_known_hosts_file']}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                f"root@{subnet}.12", "echo ok",
            ],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert login.stdout == "ok\n", login.stderr
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "tests.fleet", "down", "--dir", str(wd)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stopped 2 host(s)"
    assert not wd.exists()
    with socket.socket() as s:
        assert s.connect_ex((f"{subnet}.12", 22)) != 0


def test_fleet_left_by_a_killed_run_is_reclaimed(fleet: Fleet) -> None:
    subnet = "127.201." + fleet.subnet.rsplit(".", 1)[1]
    code = (
        "import sys, time\n"
        "from tests.fleet import Fleet\n"
        f"f = Fleet(2, {subnet!r})\n"
        "print(f.workdir, flush=True)\n"
        "time.sleep(300)\n"
    )
    orphan = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert orphan.stdout is not None
    workdir = Path(orphan.stdout.readline().strip())
    orphan.kill()  # no teardown: its sshds stay up
    orphan.wait(timeout=10)
    orphan.stdout.close()
    with socket.socket() as s:
        assert s.connect_ex((f"{subnet}.11", 22)) == 0
    with Fleet(2, subnet) as again:
        assert again.is_running(1)
        assert not workdir.exists()
        login = subprocess.run(
            [*again.ssh_command(1), "true"], capture_output=True, text=True, timeout=30
        )
        assert login.returncode == 0, login.stderr


def test_shared_paths_under_tmp_are_visible_read_only_on_every_host(fleet: Fleet) -> None:
    """A checkout (or pytest's tmp dir) under /tmp stays visible though each host's /tmp is
    private: bind-mounted read-only at its own path, kept across reset()."""
    import shlex
    import shutil
    import tempfile

    from tests.fleet import REPO

    subnet = "127.202." + fleet.subnet.rsplit(".", 1)[1]
    shared = Path(tempfile.mkdtemp(prefix="cdlib-shared-", dir="/tmp"))
    try:
        (shared / "sub").mkdir()
        (shared / "sub" / "app.txt").write_text("from the checkout\n")
        f = shlex.quote(str(shared / "sub" / "app.txt"))
        with Fleet(2, subnet, shared=[shared / "sub", shared]) as small:
            assert small.private_tmp
            assert shared in small.shared and REPO in small.shared
            assert shared / "sub" not in small.shared  # inside another shared path
            for k in (1, 2):
                assert small.ssh(k, f"cat {f}").stdout == "from the checkout\n"
                assert (
                    small.ssh(k, f"test -f {shlex.quote(str(REPO / 'tests/fleet.py'))}").returncode
                    == 0
                )
                wrote = small.ssh(k, f"echo x >> {f} || rm -rf {shlex.quote(str(shared))}")
                assert wrote.returncode != 0
            assert (shared / "sub" / "app.txt").read_text() == "from the checkout\n"
            assert small.path(1, str(shared / "sub" / "app.txt")) == shared / "sub" / "app.txt"
            # The rest of /tmp is still per host.
            small.ssh(1, "echo one > /tmp/cdlib-private-probe", check=True)
            assert small.ssh(2, "test -e /tmp/cdlib-private-probe").returncode == 1
            assert not Path("/tmp/cdlib-private-probe").exists()
            small.reset()
            assert small.ssh(2, f"cat {f}").stdout == "from the checkout\n"
            assert small.ssh(1, "test -e /tmp/cdlib-private-probe").returncode == 1
        assert (shared / "sub" / "app.txt").is_file()
    finally:
        shutil.rmtree(shared)
