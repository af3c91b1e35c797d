"""Issue 4's acceptance tests for the file and system tasks, on the SSH test fleet.

Fleet hosts share /etc/passwd, /usr and the dpkg database with this machine (only /srv,
/opt, /var/lib/cdlib, /etc/cdlib-host and /tmp are per host), so users and groups get
unique per-host names and are removed afterwards, and the one package test installs and
removes a tiny package on one host only.
"""

from __future__ import annotations

import io
import os
import secrets
import shlex
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import cdlib
from cdlib import Status
from tests.fleet import Fleet
from tests.wheels import make_wheel

pytestmark = pytest.mark.fleet

PLAYBOOK = """
from cdlib import Play, tasks

U = "{prefix}_{{{{ inventory_hostname }}}}"
play = Play("host tasks", hosts="all", vars={{"app": "/srv/app"}})
play.task(tasks.group(U))
play.task(tasks.user(U, group=U, shell="/bin/sh", system=True, home="/srv/app/home"))
play.task(tasks.directory("{{{{ app }}}}", mode="0755"))
play.task(tasks.copy("files/data.bin", "{{{{ app }}}}/data.bin"))
play.task(tasks.copy("files/app.conf", "{{{{ app }}}}/", owner=U, group=U, mode="0640"))
play.task(tasks.template("app.ini.j2", "{{{{ app }}}}/app.ini", vars={{"port": 8080}}))
play.task(tasks.line_in_file("/srv/legacy.conf", "port = 8081", regexp="^port ="))
play.task(tasks.block_in_file("/srv/legacy.conf", "feature_x = on\\nfeature_y = off"))
play.task(tasks.block_in_file("{{{{ app }}}}/motd", "managed by cdlib", create=True))
play.task(tasks.unarchive("files/release.tar.gz", "{{{{ app }}}}/release"))
play.task(tasks.unarchive("files/web.zip", "{{{{ app }}}}/web"))
play.task(tasks.symlink("{{{{ app }}}}/current", "{{{{ app }}}}/release"))
play.task(tasks.absent("/srv/old"))
play.task(tasks.fetch("{{{{ app }}}}/app.ini", "fetched/{{{{ inventory_hostname }}}}/app.ini"))
play.task(tasks.package(["tar", "coreutils"]))
play.task(tasks.directory("/opt/wheels"))
play.task(tasks.copy("files/{tiny}", "/opt/wheels/"))
play.task(
    tasks.pip(
        "/opt/venv",
        requirements="requirements.txt",
        wheel="files/{other}",
        python="/usr/bin/python3",
        extra_args=["--no-index", "--find-links", "/opt/wheels"],
    )
)
"""


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def prefix(fleet: Fleet) -> Iterator[str]:
    """A unique user/group name prefix; whatever is left under it is removed at the end."""
    p = "cdlt" + secrets.token_hex(3)
    yield p
    for h in fleet.hosts:
        name = f"{p}_{h.name}"
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def _project(tmp: Path, prefix: str) -> Path:
    files = tmp / "files"
    files.mkdir(parents=True)
    (files / "data.bin").write_bytes(os.urandom(1024 * 1024))
    (files / "app.conf").write_text("[app]\nname = demo\n")
    (files / "release.tar.gz").write_bytes(
        _tar_gz({"VERSION": b"1.0\n", "bin/run": b"#!/bin/sh\n"})
    )
    (files / "web.zip").write_bytes(_zip({"index.html": b"<h1>demo</h1>\n"}))
    tiny = make_wheel(files, "cdlt-tiny", "1.0")
    other = make_wheel(files, "cdlt-other", "2.0")
    (tmp / "requirements.txt").write_text("cdlt-tiny==1.0\n")
    (tmp / "templates").mkdir()
    (tmp / "templates" / "app.ini.j2").write_text(
        "host = {{ inventory_hostname }}\nport = {{ port }}\n"
    )
    pb = tmp / "site.py"
    pb.write_text(PLAYBOOK.format(prefix=prefix, tiny=tiny.name, other=other.name))
    return pb


def _seed(fleet: Fleet) -> None:
    """What a host has before cdlib manages it: a config to edit, a directory to remove."""
    for h in fleet.hosts:
        fleet.path(h.index, "/srv/legacy.conf").write_text("port = 80\n# keep me\n")
        old = fleet.path(h.index, "/srv/old/sub")
        old.mkdir(parents=True)
        (old / "f").write_text("x")


def _no_temp_files(fleet: Fleet) -> None:
    # The fleet's shared paths (this checkout, pytest's temp dirs of every worker) are
    # mounted into each host's /tmp: what the control side writes there is not the host's.
    prune = " ".join(f"-path {shlex.quote(str(p))} -prune -o" for p in fleet.shared)
    for h in fleet.hosts:
        out = fleet.ssh(
            h.index,
            f"find /srv /opt /tmp {prune} -name '.*cdlib*' ! -name .cdlib-unarchive.sha256 "
            "! -name .cdlib-requirements.txt -print",
            check=True,
        )
        assert out.stdout.strip() == "", f"{h.name}: leftover temp files: {out.stdout}"


def _ok(res: cdlib.RunResult) -> None:
    bad = [r for r in res.results if r.status in (Status.FAILED, Status.UNREACHABLE)]
    assert not bad, [(r.host, r.task, r.msg) for r in bad]


def _inode(fleet: Fleet, k: int, path: str) -> int:
    return fleet.path(k, path).stat().st_ino


def test_every_host_task_check_first_run_rerun(
    fleet: Fleet, fleet_inventory: Path, tmp_path: Path, prefix: str
) -> None:
    pb = _project(tmp_path / "project", prefix)
    _seed(fleet)
    legacy_ino = _inode(fleet, 1, "/srv/legacy.conf")
    # Keep the old file open: its inode stays allocated, so a rewrite by rename cannot get
    # the same number back (two rewrites in one run could otherwise reuse it).
    legacy_fh = fleet.path(1, "/srv/legacy.conf").open("rb")

    checked = cdlib.run(pb, fleet_inventory, check=True)
    _ok(checked)
    predicted = checked.changed()
    # check mode changed nothing anywhere
    for h in fleet.hosts:
        assert not fleet.path(h.index, "/srv/app").exists()
        assert not fleet.path(h.index, "/opt/venv").exists()
        assert fleet.path(h.index, "/srv/old/sub/f").exists()
        assert fleet.path(h.index, "/srv/legacy.conf").read_text() == "port = 80\n# keep me\n"
        assert subprocess.run(["getent", "passwd", f"{prefix}_{h.name}"]).returncode == 2
    assert not (pb.parent / "fetched").exists()

    first = cdlib.run(pb, fleet_inventory)
    _ok(first)
    assert first.changed() == predicted
    # everything but the already-installed packages changed on every host
    assert len(predicted) == 5 * 17
    assert not any(t == "package tar, coreutils" for (_, t) in predicted)

    data = (pb.parent / "files" / "data.bin").read_bytes()
    for h in fleet.hosts:
        k, name = h.index, f"{prefix}_{h.name}"
        assert fleet.path(k, "/srv/app/data.bin").read_bytes() == data
        conf = fleet.path(k, "/srv/app/app.conf")
        st = conf.stat()
        assert oct(st.st_mode)[-3:] == "640"
        assert fleet.ssh(k, "stat -c %U:%G /srv/app/app.conf").stdout.strip() == f"{name}:{name}"
        ini = fleet.path(k, "/srv/app/app.ini").read_text()
        assert ini == f"host = {h.name}\nport = 8080\n"
        assert (pb.parent / "fetched" / h.name / "app.ini").read_text() == ini
        assert fleet.path(k, "/srv/legacy.conf").read_text() == (
            "port = 8081\n# keep me\n# BEGIN CDLIB MANAGED BLOCK\nfeature_x = on\n"
            "feature_y = off\n# END CDLIB MANAGED BLOCK\n"
        )
        assert fleet.path(k, "/srv/app/release/VERSION").read_text() == "1.0\n"
        assert os.access(fleet.path(k, "/srv/app/release/bin/run"), os.X_OK)
        assert fleet.path(k, "/srv/app/web/index.html").read_text() == "<h1>demo</h1>\n"
        assert fleet.ssh(k, "readlink /srv/app/current").stdout.strip() == "/srv/app/release"
        assert not fleet.path(k, "/srv/old").exists()
        pw = subprocess.run(["getent", "passwd", name], capture_output=True, text=True).stdout
        assert pw.strip().endswith(":/srv/app/home:/bin/sh")
        out = fleet.ssh(
            k,
            "/opt/venv/bin/python -c 'import cdlt_tiny, cdlt_other; print("
            "cdlt_tiny.VERSION, cdlt_other.VERSION)'",
            check=True,
        )
        assert out.stdout.split() == ["1.0", "2.0"]
    # the edit was a rename over the file (a new inode), never a rewrite in place
    assert _inode(fleet, 1, "/srv/legacy.conf") != legacy_ino
    legacy_fh.close()
    _no_temp_files(fleet)

    # A re-run changes nothing, sends nothing (the 1 MB file included) and reads every
    # fact of every task in one batched round trip per host.
    conns: list[cdlib.api.Connection] = []

    def factory(host: cdlib.Host) -> cdlib.api.Connection:
        c = cdlib.api.connection_for(host)
        conns.append(c)
        return c

    again = cdlib.run(pb, fleet_inventory, connection_factory=factory)
    _ok(again)
    assert again.changed() == set()
    assert len(conns) == 5
    for c in conns:
        assert c.stats.puts == 0 and c.stats.gets == 0
        assert c.stats.round_trips == 1

    # New versions of the big file and the release: replaced by rename (new inodes),
    # the unchanged zip is not unpacked again.
    (pb.parent / "files" / "data.bin").write_bytes(os.urandom(1024 * 1024))
    (pb.parent / "files" / "release.tar.gz").write_bytes(_tar_gz({"VERSION": b"2.0\n"}))
    # A changed requirements file (same pins) is installed again and kept in the venv.
    (pb.parent / "requirements.txt").write_text("# pinned for the demo\ncdlt-tiny==1.0\n")
    before = {p: _inode(fleet, 2, p) for p in ("/srv/app/data.bin", "/srv/app/release")}
    web_ino = _inode(fleet, 2, "/srv/app/web")
    conns.clear()
    upd_check = cdlib.run(pb, fleet_inventory, check=True)
    upd = cdlib.run(pb, fleet_inventory, connection_factory=factory)
    _ok(upd)
    assert upd.changed() == upd_check.changed()
    assert {t for (_, t) in upd.changed()} == {
        "copy files/data.bin -> /srv/app/data.bin",
        "unarchive files/release.tar.gz -> /srv/app/release",
        "pip requirements.txt -> /opt/venv",
    }
    [pip_result] = [r for r in upd.results if r.host == "host1" and r.task.startswith("pip")]
    assert pip_result.changes == ["install requirements (file changed)"]
    kept = fleet.path(2, "/opt/venv/.cdlib-requirements.txt").read_text()
    assert kept.startswith("# pinned for the demo")
    # Files up to 16 MiB travel in the writing command's stdin: no SFTP transfer at all.
    assert all(c.stats.puts == 0 for c in conns)
    for p, ino in before.items():
        assert _inode(fleet, 2, p) != ino
    assert _inode(fleet, 2, "/srv/app/web") == web_ino
    assert fleet.path(2, "/srv/app/release/VERSION").read_text() == "2.0\n"
    assert not fleet.path(2, "/srv/app/release/bin").exists()  # the tree is the archive's
    _no_temp_files(fleet)


def test_user_attributes_change_and_diff(
    fleet: Fleet, fleet_inventory: Path, tmp_path: Path, prefix: str
) -> None:
    name = f"{prefix}_host1"
    extra = f"{prefix}_host2"  # a second group, cleaned up by the fixture
    subprocess.run(["groupadd", extra], check=True)
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    first = cdlib.Play("u", hosts="all")
    first.task(cdlib.tasks.user(name, shell="/bin/sh", system=True))
    cdlib.run(first, inv)
    second = cdlib.Play("u2", hosts="all")
    second.task(cdlib.tasks.user(name, shell="/bin/bash", groups=[extra], system=True))
    check = cdlib.run(second, inv, check=True)
    [r] = check.results
    assert r.status is Status.CHANGED
    assert r.changes == ["add to groups " + extra, "shell /bin/sh -> /bin/bash"]
    done = cdlib.run(second, inv)
    assert done.changed() == check.changed()
    out = subprocess.run(["id", "-Gn", name], capture_output=True, text=True).stdout.split()
    assert extra in out
    assert cdlib.run(second, inv).changed() == set()
    third = cdlib.Play("u3", hosts="all")
    third.task(cdlib.tasks.user(name, state="absent"))
    third.task(cdlib.tasks.group(name, state="absent"))  # userdel already removes it
    third.task(cdlib.tasks.group(extra, state="absent"))
    res = cdlib.run(third, inv, check=True)
    assert [r.changes for r in res.results] == [
        [f"remove user {name} (and its private group {name}, if no one else uses it)"],
        [],
        [f"remove group {extra}"],
    ]
    done = cdlib.run(third, inv)
    assert done.changed() == res.changed()
    for g in (name, extra):
        assert subprocess.run(["getent", "group", g], capture_output=True).returncode == 2


def _apt_has(name: str) -> tuple[bool, bool]:
    out = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True).stdout
    installed = "Installed: (none)" not in out and "Installed:" in out
    candidate = "Candidate:" in out and "Candidate: (none)" not in out
    return installed, candidate


@pytest.mark.slow
def test_package_install_and_remove_with_apt(fleet: Fleet, tmp_path: Path) -> None:
    """One real install (tiny ``sl``) on one host; the dpkg database is the machine's."""
    pkg = "sl"
    installed, candidate = _apt_has(pkg)
    if installed:
        pytest.skip(f"{pkg} is already installed on this machine; the test would remove it")
    if not candidate:
        pytest.skip(f"apt knows no candidate for {pkg} (no package lists)")
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    play = cdlib.Play("pkg", hosts="all")
    play.task(cdlib.tasks.package(pkg))
    check = cdlib.run(play, inv, check=True)
    assert [r.changes for r in check.results] == [[f"install {pkg}"]]
    try:
        res = cdlib.run(play, inv)
        if res.results[0].status is Status.FAILED:
            msg = res.results[0].msg
            if any(s in msg for s in ("Could not resolve", "Failed to fetch", "Temporary failure")):
                pytest.skip(f"apt has no network: {msg[-200:]}")
        _ok(res)
        assert res.changed() == check.changed()
        assert _apt_has(pkg)[0]
        assert cdlib.run(play, inv).changed() == set()
    finally:
        gone = cdlib.Play("nopkg", hosts="all")
        gone.task(cdlib.tasks.package(pkg, state="absent"))
        removed = cdlib.run(gone, inv)
    _ok(removed)
    assert not _apt_has(pkg)[0]


def test_fetch_never_writes_outside_dest_on_the_control_machine(
    fleet: Fleet, fleet_inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host named ``../../x`` (or a ``src`` full of ``..``) cannot steer fetch out of dest."""
    import yaml

    from cdlib.cli.main import main

    fleet.path(1, "/srv/app.conf").write_text("fetched\n")
    inv = fleet.inventory(hosts=[1])
    web = inv["all"]["children"]["web"]["hosts"]
    web["../../x"] = web.pop("host1")  # same sshd, hostile inventory name
    (tmp_path / "evil.yml").write_text(yaml.safe_dump(inv))
    project = tmp_path / "project"
    project.mkdir()
    pb = project / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "p = Play('p', hosts='web')\n"
        "p.task(tasks.fetch('/srv/app.conf', 'out/'))\n"
        "p.task(tasks.fetch('/srv/app.conf', 'logs/{{ inventory_hostname }}.conf'))\n"
    )
    assert main(["run", str(pb), "-i", str(tmp_path / "evil.yml")]) == 4
    err = capsys.readouterr().err
    assert "host ../../x" in err and "task 'fetch /srv/app.conf -> out/'" in err
    assert "task 'fetch /srv/app.conf -> logs/" in err
    assert sorted(p.name for p in project.iterdir()) == ["pb.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.yml", "inventory.yml", "project"]
    # The same fetch from a sane name, with '..' in src, lands under out/host1/ only.
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "p = Play('p', hosts='web')\n"
        "p.task(tasks.fetch('/../../srv/../srv/app.conf', 'out/'))\n"
    )
    ok = fleet.inventory_yaml(tmp_path / "ok.yml", hosts=[1])
    assert main(["run", str(pb), "-i", str(ok)]) == 0
    assert (project / "out" / "host1" / "srv" / "app.conf").read_text() == "fetched\n"
    files = [p for p in project.rglob("*") if p.is_file()]
    assert sorted(str(p.relative_to(project)) for p in files) == [
        "out/host1/srv/app.conf", "pb.py"
    ]  # fmt: skip
