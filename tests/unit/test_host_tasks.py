"""Host tasks: pure helpers, and every file task run with the local transport."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

import cdlib
from cdlib import Host, Inventory, Play, PlaybookError, Status, tasks
from cdlib.facts.files import PathFact
from cdlib.facts.packages import PackageState, parse_packages
from cdlib.facts.system import parse_os_release
from cdlib.tasks.absent import dangerous_path
from cdlib.tasks.archive import MARKER, archive_format, extract_command
from cdlib.tasks.lines import edit_block, edit_line
from cdlib.tasks.packages import decide, package_commands
from cdlib.tasks.pip import parse_spec, same_version, unmet, wheel_name_version

# -- pure --------------------------------------------------------------------------


def test_edit_line_present_replace_insert() -> None:
    text = "a=1\nport=80\nb=2\n"
    assert edit_line(text, "port=80") is text
    assert edit_line(text, "port=8080", regexp=r"^port=") == "a=1\nport=8080\nb=2\n"
    assert edit_line(text, "c=3") == text + "c=3\n"
    assert edit_line(text, "c=3", insertafter=r"^a=") == "a=1\nc=3\nport=80\nb=2\n"
    assert edit_line(text, "c=3", insertbefore="BOF") == "c=3\n" + text
    assert edit_line(text, "c=3", insertbefore=r"^b=") == "a=1\nport=80\nc=3\nb=2\n"
    assert edit_line(text, "c=3", insertafter=r"^nomatch") == text + "c=3\n"
    # the last match is replaced
    assert edit_line("x=1\nx=2\n", "x=9", regexp="^x=") == "x=1\nx=9\n"
    # a file without a final newline gets one when a line is added
    assert edit_line("a", "b") == "a\nb\n"
    assert edit_line("", "b") == "b\n"


def test_edit_line_absent() -> None:
    text = "a=1\n# x\nb=2\n# y\n"
    assert edit_line(text, None, regexp=r"^#", state="absent") == "a=1\nb=2\n"
    assert edit_line(text, "a=1", state="absent") == "# x\nb=2\n# y\n"
    assert edit_line(text, "zzz", state="absent") is text


def test_edit_block() -> None:
    text = "head\n"
    once = edit_block(text, "x 1\ny 2\n")
    assert once == "head\n# BEGIN CDLIB MANAGED BLOCK\nx 1\ny 2\n# END CDLIB MANAGED BLOCK\n"
    assert edit_block(once, "x 1\ny 2") is once
    changed = edit_block(once + "tail\n", "z 3")
    assert changed == "head\n# BEGIN CDLIB MANAGED BLOCK\nz 3\n# END CDLIB MANAGED BLOCK\ntail\n"
    assert edit_block(changed, "", state="absent") == "head\ntail\n"
    assert edit_block(changed, "") == "head\ntail\n"
    first = edit_block("a\nb\n", "x", insertbefore="BOF", marker="## {mark} one")
    assert first == "## BEGIN one\nx\n## END one\na\nb\n"
    two = edit_block(first, "y", marker="## {mark} two", insertafter="^a$")
    assert two == "## BEGIN one\nx\n## END one\na\n## BEGIN two\ny\n## END two\nb\n"


def test_dangerous_paths() -> None:
    for p in ("/", "/srv", "/etc", "/usr/bin", "/var/lib", "relative", "/srv/../etc", "/srv/a/"):
        assert dangerous_path(p) is not None, p
    for p in ("/srv/app", "/opt/app/releases/1", "/etc/cdlib-host/x"):
        assert dangerous_path(p) is None, p


def test_archive_format_and_tools() -> None:
    assert archive_format("a.tar.gz") == "tar" and archive_format("A.TGZ") == "tar"
    assert archive_format("a.zip") == "zip" and archive_format("a.rar") is None
    assert extract_command("zip", "a", "d", {"unzip": "/x"}).startswith("unzip")
    assert extract_command("zip", "a", "d", {"python3": "/x"}).startswith("python3 -m zipfile")
    with pytest.raises(cdlib.TaskFailed, match="neither 'unzip' nor 'python3'"):
        extract_command("zip", "a", "d", {"tar": "/bin/tar"})


RHEL = (
    "@@cdlib-pkg os\nID=rocky\nID_LIKE='rhel centos fedora'\n@@cdlib-pkg dnf\n"
    "bash\t5.1.8-6.el9\npackage nginx is not installed\n@@cdlib-pkg updates\n"
    "bash.x86_64   5.1.8-9.el9   baseos\n"
)


def test_package_decisions_dnf() -> None:
    st = parse_packages(RHEL)
    assert decide(("bash", "nginx"), "present", st).install == ("nginx",)
    todo = decide(("bash", "nginx"), "latest", st)
    assert todo.install == ("nginx",) and todo.upgrade == ("bash",)
    assert decide(("bash", "nginx"), "absent", st).remove == ("bash",)
    assert package_commands("dnf", todo, update_cache=True) == [
        "dnf -y -q makecache",
        "dnf -y -q install nginx",
        "dnf -y -q upgrade bash",
    ]


def test_package_decisions_apt() -> None:
    st = PackageState(parse_os_release("ID=debian\n"), "apt", {"curl": "1"}, {"curl": "2"})
    todo = decide(("curl", "sl"), "latest", st)
    cmds = package_commands("apt", todo)
    assert len(cmds) == 1 and "apt-get" in cmds[0] and cmds[0].endswith("install sl curl")
    assert "DEBIAN_FRONTEND=noninteractive" in cmds[0]
    assert decide(("curl",), "present", st).install == ()


def test_pip_specs() -> None:
    assert parse_spec("Flask==3.0.3  # web") == ("flask", "3.0.3")
    assert parse_spec("requests>=2") == ("requests", None)
    assert parse_spec("uvicorn[standard]==0.30") == ("uvicorn", "0.30")
    assert parse_spec("-r other.txt") is None and parse_spec("./local/pkg") is None
    assert same_version("1.0", "1.0.0") and not same_version("1.0", "1.0.1")
    assert unmet(["a==1.0", "b", "c==2", "--index-url x"], {"a": "1", "c": "3"}) == ["b", "c==2"]
    assert wheel_name_version("tiny_pkg-1.2-py3-none-any.whl") == ("tiny-pkg", "1.2")
    with pytest.raises(ValueError, match="not a wheel"):
        wheel_name_version("tiny.tar.gz")


# -- local runs ------------------------------------------------------------------


def _inv(tmp_path: Path) -> Inventory:
    return Inventory([Host("h1", {"ansible_connection": "local", "dir": str(tmp_path / "h")})])


def _run(play: Play, tmp_path: Path, check: bool = False, diff: bool = False) -> cdlib.RunResult:
    res = cdlib.run(play, _inv(tmp_path), check=check, diff=diff)
    failed = [r for r in res.results if r.status is Status.FAILED]
    assert not failed, failed[0].msg
    return res


def _assert_predicted(play: Play, tmp_path: Path) -> cdlib.RunResult:
    """Check mode predicts the first run exactly; a second run changes nothing."""
    checked = _run(play, tmp_path, check=True)
    first = _run(play, tmp_path)
    assert first.changed() == checked.changed()
    assert _run(play, tmp_path).changed() == set()
    return first


def test_copy_and_fetch_local(tmp_path: Path) -> None:
    src = tmp_path / "files" / "app.conf"
    src.parent.mkdir()
    src.write_text("a = 1\n")
    big = tmp_path / "files" / "big.bin"
    big.write_bytes(os.urandom(300 * 1024))  # above the stdin limit: SFTP-style upload path
    play = Play("p", hosts="all")
    play.task(tasks.directory("{{ dir }}"))
    play.task(tasks.copy(str(src), "{{ dir }}/", mode="0600"))
    play.task(tasks.copy(str(big), "{{ dir }}/big.bin"))
    play.task(tasks.fetch("{{ dir }}/app.conf", str(tmp_path / "fetched") + "/"))
    first = _assert_predicted(play, tmp_path)
    assert len(first.changed()) == 4
    dest = tmp_path / "h" / "app.conf"
    assert dest.read_text() == "a = 1\n" and oct(dest.stat().st_mode)[-3:] == "600"
    assert (tmp_path / "h" / "big.bin").read_bytes() == big.read_bytes()
    fetched = tmp_path / "fetched" / "h1" / str(tmp_path / "h" / "app.conf").lstrip("/")
    assert fetched.read_text() == "a = 1\n"
    src.write_text("a = 2\n")
    res = _run(play, tmp_path, check=True, diff=True)
    # the fetch sees the content the copy would leave, as a real run would
    r, f = [r for r in res.results if r.status is Status.CHANGED]
    assert "-a = 1\n+a = 2" in (r.diff or "") and r.changes == ["content"]
    assert f.task.startswith("fetch ") and "+a = 2" in (f.diff or "")
    assert res.changed() == _run(play, tmp_path).changed()
    # nothing leaked beside the destination
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == ["app.conf", "big.bin"]


def test_line_and_block_local(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    conf = tmp_path / "h" / "app.conf"
    conf.write_text("port=80\n# comment\n")
    os.chmod(conf, 0o640)
    play = Play("p", hosts="all")
    play.task(tasks.line_in_file("{{ dir }}/app.conf", "port=8080", regexp="^port="))
    play.task(tasks.line_in_file("{{ dir }}/app.conf", regexp="^# comment", state="absent"))
    play.task(tasks.block_in_file("{{ dir }}/app.conf", "x=1\ny=2"))
    play.task(tasks.line_in_file("{{ dir }}/new.conf", "k=v", create=True, mode="0644"))
    _assert_predicted(play, tmp_path)
    assert conf.read_text() == (
        "port=8080\n# BEGIN CDLIB MANAGED BLOCK\nx=1\ny=2\n# END CDLIB MANAGED BLOCK\n"
    )
    assert oct(conf.stat().st_mode)[-3:] == "640"  # mode kept
    assert (tmp_path / "h" / "new.conf").read_text() == "k=v\n"
    missing = Play("m", hosts="all")
    missing.task(tasks.line_in_file("{{ dir }}/nope.conf", "k=v"))
    res = cdlib.run(missing, _inv(tmp_path))
    assert "does not exist; set create=True" in res.results[0].msg


def test_absent_local(tmp_path: Path) -> None:
    h = tmp_path / "h"
    (h / "tree" / "sub").mkdir(parents=True)
    (h / "tree" / "sub" / "f").write_text("x")
    (h / "file").write_text("bye\n")
    (h / "link").symlink_to(h / "file")
    play = Play("p", hosts="all")
    for name in ("link", "tree", "file", "never-was"):
        play.task(tasks.absent("{{ dir }}/" + name))
    first = _assert_predicted(play, tmp_path)
    assert len(first.changed()) == 3
    assert list(h.iterdir()) == []
    with pytest.raises(PlaybookError, match="refusing to remove '/etc'"):
        tasks.absent("/etc")
    bad = Play("b", hosts="all")
    bad.task(tasks.absent("{{ dir }}/../.."))
    with pytest.raises(PlaybookError, match="not a normalized path"):
        cdlib.run(bad, _inv(tmp_path))


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_unarchive_local(tmp_path: Path) -> None:
    arch = tmp_path / "files"
    arch.mkdir()
    (arch / "app.tar.gz").write_bytes(_tar_gz({"bin/run": b"#!/bin/sh\n", "VERSION": b"1\n"}))
    (arch / "web.zip").write_bytes(_zip({"index.html": b"<h1>hi</h1>"}))
    play = Play("p", hosts="all")
    play.task(tasks.unarchive(str(arch / "app.tar.gz"), "{{ dir }}/app", mode="0755"))
    play.task(tasks.unarchive(str(arch / "web.zip"), "{{ dir }}/web"))
    _assert_predicted(play, tmp_path)
    app = tmp_path / "h" / "app"
    assert (app / "VERSION").read_text() == "1\n" and (app / "bin" / "run").exists()
    assert (app / MARKER).read_text().strip() and oct(app.stat().st_mode)[-3:] == "755"
    assert (tmp_path / "h" / "web" / "index.html").read_bytes() == b"<h1>hi</h1>"
    # a new archive version replaces the directory as a whole; no temp dirs remain
    (app / "stale").write_text("old")
    (arch / "app.tar.gz").write_bytes(_tar_gz({"VERSION": b"2\n"}))
    res = _run(play, tmp_path)
    assert [r.changes for r in res.results if r.status is Status.CHANGED] == [
        [f"unpack {arch / 'app.tar.gz'} into {app}", f"replace existing {app}"]
    ]
    assert sorted(p.name for p in app.iterdir()) == [MARKER, "VERSION"]
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == ["app", "web"]


def test_bad_options_are_located() -> None:
    with pytest.raises(PlaybookError, match=r"test_host_tasks\.py:\d+.*mutually exclusive"):
        tasks.line_in_file("/srv/x", "a", insertafter="a", insertbefore="b")
    with pytest.raises(PlaybookError, match="archive format"):
        tasks.unarchive("thing.rar", "/srv/x")
    with pytest.raises(PlaybookError, match="'requirements', 'packages' or 'wheel'"):
        tasks.pip("/srv/venv")
    with pytest.raises(PlaybookError, match="not a valid user or group name"):
        tasks.user("bad name")
    with pytest.raises(PlaybookError, match="not a valid package name"):
        tasks.package(["ok", "no;rm"])
    assert PathFact("/x").key == ("path", "/x")


def test_line_in_large_file_and_secret_diff(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    big = tmp_path / "h" / "big.conf"
    body = "".join(f"key{i} = {i}\n" for i in range(8000))  # > 64 KiB: content is downloaded
    big.write_text(body + "password = old-value\n")
    play = Play("p", hosts="all", vars={"pw": cdlib.Secret("n3w-s3cret")})
    play.task(tasks.line_in_file("{{ dir }}/big.conf", "password = {{ pw }}", regexp="^password"))
    play.task(tasks.directory("{{ dir }}/gone", state="absent"))
    checked = _run(play, tmp_path, check=True, diff=True)
    diff = checked.results[0].diff or ""
    assert "+password = ********" in diff and "n3w-s3cret" not in diff
    assert [r.status for r in checked.results] == [Status.CHANGED, Status.OK]
    _run(play, tmp_path)
    assert big.read_text() == body + "password = n3w-s3cret\n"
    assert _run(play, tmp_path).changed() == set()


def test_directory_absent_renames_then_deletes(tmp_path: Path) -> None:
    tree = tmp_path / "h" / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    play = Play("p", hosts="all")
    play.task(tasks.directory("{{ dir }}/tree", state="absent"))
    res = _assert_predicted(play, tmp_path)
    assert len(res.changed()) == 1
    assert list((tmp_path / "h").iterdir()) == []


def test_zip_unpacks_with_python3_when_no_unzip(tmp_path: Path) -> None:
    import subprocess

    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip({"d/x.txt": b"hello"}))
    out = tmp_path / "out"
    out.mkdir()
    cmd = extract_command("zip", str(archive), str(out), {"python3": "/usr/bin/python3"})
    subprocess.run(["sh", "-c", cmd], check=True)
    assert (out / "d" / "x.txt").read_bytes() == b"hello"


def test_copy_onto_a_directory_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "h" / "conf").mkdir(parents=True)
    src = tmp_path / "x.conf"
    src.write_text("x")
    play = Play("p", hosts="all")
    play.task(tasks.copy(str(src), "{{ dir }}/conf"))
    res = cdlib.run(play, _inv(tmp_path))
    assert res.results[0].status is Status.FAILED
    assert "is a directory; give the full file path as dest" in res.results[0].msg
    missing = Play("m", hosts="all")
    missing.task(tasks.copy("no/such/file", "/srv/x"))
    with pytest.raises(PlaybookError, match="is not a readable file"):
        cdlib.run(missing, _inv(tmp_path))


def test_check_mode_sees_what_earlier_tasks_would_leave(tmp_path: Path) -> None:
    arch = tmp_path / "r.tar.gz"
    arch.write_bytes(_tar_gz({"VERSION": b"1\n"}))
    play = Play("p", hosts="all")
    play.task(tasks.directory("{{ dir }}"))
    play.task(tasks.file("{{ dir }}/app.conf", content="port = 80\nname = x\n"))
    play.task(tasks.line_in_file("{{ dir }}/app.conf", "port = 8080", regexp="^port"))
    play.task(tasks.line_in_file("{{ dir }}/app.conf", "name = x"))  # already there
    play.task(tasks.unarchive(str(arch), "{{ dir }}/rel"))
    play.task(tasks.unarchive(str(arch), "{{ dir }}/rel"))  # the same again: nothing to do
    play.task(tasks.absent("{{ dir }}/app.conf"))
    play.task(tasks.absent("{{ dir }}/app.conf"))
    checked = _run(play, tmp_path, check=True, diff=True)
    assert [r.status.value for r in checked.results] == [
        "changed",
        "changed",
        "changed",
        "ok",
        "changed",
        "ok",
        "changed",
        "ok",
    ]
    assert "-port = 80\n+port = 8080" in (checked.results[2].diff or "")
    first = _run(play, tmp_path)
    assert [r.status for r in first.results] == [r.status for r in checked.results]


def test_fetch_into_per_host_directories_from_an_untemplated_task(tmp_path: Path) -> None:
    src = tmp_path / "shared.txt"
    src.write_text("same file\n")
    hosts = [Host(f"h{i}", {"ansible_connection": "local"}) for i in (1, 2)]
    play = Play("p", hosts="all")
    play.task(tasks.fetch(str(src), str(tmp_path / "out") + "/"))
    res = cdlib.run(play, Inventory(hosts))
    assert len(res.changed()) == 2
    for h in ("h1", "h2"):
        assert (tmp_path / "out" / h / str(src).lstrip("/")).read_text() == "same file\n"


@pytest.mark.parametrize(
    ("host", "src", "dest"),
    [
        ("../../x", "/etc/hostname", "out/"),  # host name climbs out of dest/<host>/
        ("..", "/etc/hostname", "out/"),
        ("a/../../..", "/etc/hostname", "out/"),
        ("../../x", "/etc/hostname", "out/{{ inventory_hostname }}.log"),
        ("h1", "/etc/hostname", "out/{{ sub }}/f"),  # a variable holding '..'
    ],
)
def test_fetch_refuses_a_local_path_that_leaves_dest(
    tmp_path: Path, host: str, src: str, dest: str
) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.fetch(src, f"{tmp_path}/pb/{dest}"))
    inv = Inventory([Host(host, {"ansible_connection": "local", "sub": "../../.."})])
    with pytest.raises(PlaybookError) as err:
        cdlib.run(play, inv)
    assert f"host {host}" in str(err.value) and "task 'fetch " in str(err.value)
    assert (
        "leaves dest" in str(err.value)
        or "cannot be a directory" in str(err.value)
        or ("climbs out" in str(err.value))
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


def test_fetch_normalises_dots_in_src_under_dest(tmp_path: Path) -> None:
    src = tmp_path / "shared.txt"
    src.write_text("x\n")
    play = Play("p", hosts="all")
    dotted = "/.." * 8 + str(src)  # the host reads the same file; locally it stays in out/
    play.task(tasks.fetch(dotted, str(tmp_path / "out") + "/"))
    res = cdlib.run(play, Inventory([Host("h1", {"ansible_connection": "local"})]))
    assert res.ok
    assert (tmp_path / "out" / "h1" / str(src).lstrip("/")).read_text() == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "shared.txt"]


def test_fetch_dest_from_a_variable_still_works(tmp_path: Path) -> None:
    src = tmp_path / "shared.txt"
    src.write_text("x\n")
    play = Play("p", hosts="all")
    play.task(tasks.fetch(str(src), "{{ out }}/{{ inventory_hostname }}.txt"))
    inv = Inventory([Host("h1", {"ansible_connection": "local", "out": str(tmp_path / "o")})])
    assert cdlib.run(play, inv).ok
    assert (tmp_path / "o" / "h1.txt").read_text() == "x\n"


def test_edits_are_idempotent() -> None:
    """Applying an edit to its own result changes nothing, whatever the file held."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    text_line = st.text(alphabet="ab=# \t", max_size=8)
    files = st.lists(text_line, max_size=8).map(lambda ls: "".join(x + "\n" for x in ls))

    @settings(max_examples=200, deadline=None)
    @given(files, text_line, st.sampled_from([None, "^a", "=", "^#"]), st.booleans())
    def line_case(text: str, line: str, regexp: str | None, absent: bool) -> None:
        state = "absent" if absent else "present"
        once = edit_line(text, line, regexp=regexp, state=state)
        assert edit_line(once, line, regexp=regexp, state=state) == once

    @settings(max_examples=200, deadline=None)
    @given(files, st.lists(text_line, max_size=4), st.booleans())
    def block_case(text: str, body: list[str], absent: bool) -> None:
        block = "\n".join(body)
        state = "absent" if absent else "present"
        once = edit_block(text, block, state=state)
        assert edit_block(once, block, state=state) == once

    line_case()
    block_case()
