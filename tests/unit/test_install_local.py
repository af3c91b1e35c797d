"""The install task run with the local transport: unpacking, messages and ``--diff``."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import cdlib
from cdlib import Host, Inventory, Play, Status, tasks


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _run(play: Play, check: bool = False, diff: bool = False) -> cdlib.RunResult:
    inv = Inventory([Host("h1", {"ansible_connection": "local"})])
    return cdlib.run(play, inv, check=check, diff=diff)


def _one(res: cdlib.RunResult) -> cdlib.TaskResult:
    (r,) = [r for r in res.results if r.task.startswith("install")]
    return r


def test_strip_components_puts_a_wrapped_build_at_the_top(tmp_path: Path) -> None:
    build = _tgz(tmp_path / "app.tar.gz", {"app-1.0/bin/run": b"x", "app-1.0/README": b"r"})
    root = tmp_path / "srv"
    plain = Play("p", hosts="all")
    plain.task(tasks.install("app", "1.0", str(build), root=str(root)))
    # The default unpacks as it is, and the change says how to strip the wrapper.
    r = _one(_run(plain, check=True))
    assert r.status is Status.CHANGED
    assert "everything in it is under app-1.0/: strip_components=1" in r.msg
    assert _one(_run(plain)).status is Status.CHANGED
    assert (root / "releases/1.0/app-1.0/bin/run").is_file()

    stripped = Play("s", hosts="all")
    stripped.task(tasks.install("app", "2.0", str(build), root=str(root), strip_components=1))
    r = _one(_run(stripped))
    assert r.status is Status.CHANGED, r.msg
    assert "strip_components" not in r.msg
    assert (root / "releases/2.0/bin/run").read_bytes() == b"x"
    assert (root / "releases/2.0/REVISION").is_file()
    assert not (root / "releases/2.0/app-1.0").exists()


def test_strip_components_is_checked_for_escapes_after_stripping(tmp_path: Path) -> None:
    raw = tmp_path / "b.tar.gz"
    with tarfile.open(raw, "w:gz") as tar:
        info = tarfile.TarInfo("top/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../etc"  # inside top/.., outside once stripped
        tar.addfile(info)
    ok = Play("p", hosts="all")
    ok.task(tasks.install("app", "1.0", str(raw), root=str(tmp_path / "srv")))
    assert _one(_run(ok, check=True)).status is Status.CHANGED
    bad = Play("p", hosts="all")
    bad.task(tasks.install("app", "1.0", str(raw), root=str(tmp_path / "srv"), strip_components=1))
    try:
        _run(bad, check=True)
    except cdlib.PlaybookError as exc:
        assert "'top/link' is a symlink to '../etc'" in str(exc)
    else:
        raise AssertionError("the stripped build was not refused")


def test_messages_say_what_was_done_and_config_has_a_masked_diff(tmp_path: Path) -> None:
    _tgz(tmp_path / "app.tar.gz", {"bin/run": b"x"})
    (tmp_path / "app.ini.j2").write_text("port={{ port }}\n")
    root = str(tmp_path / "srv")
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, Secret, tasks\n"
        "p = Play('p', hosts='all')\n"
        "p.task(tasks.install('app', '{{ v }}', 'app.tar.gz', root=" + repr(root) + ",\n"
        "    templates={'app.ini.j2': 'conf/app.ini'},\n"
        "    env={'DB_PASSWORD': Secret('s3cret-' + __import__('os').environ['PW'])}))\n"
    )
    inv = Inventory([Host("h1", {"ansible_connection": "local"})])

    def run(v: str, port: int, pw: str, **kw: bool) -> cdlib.TaskResult:
        import os

        os.environ["PW"] = pw
        try:
            return _one(cdlib.run(pb, inv, extra_vars={"v": v, "port": port}, **kw))
        finally:
            del os.environ["PW"]

    first = run("1.0", 80, "one", diff=True)
    assert first.msg.startswith("install 1.0") and "switch current (none) -> 1.0" in first.msg
    assert first.diff and "+port=80" in first.diff
    assert "s3cret-one" not in first.diff and "DB_PASSWORD=********" in first.diff
    # A new version's config is shown against the current release's.
    checked = run("2.0", 81, "two", check=True, diff=True)
    assert checked.diff and "-port=80" in checked.diff and "+port=81" in checked.diff
    assert "s3cret" not in checked.diff
    # Going back: the message names the switch made, not the version found current.
    run("2.0", 81, "two")
    back = Play("b", hosts="all")
    back.task(tasks.install_rollback("app", root=root))
    r = [r for r in _run(back).results if r.status is Status.CHANGED]
    assert r and r[0].msg == "switch current 2.0 -> 1.0", r[0].msg
    assert run("1.0", 80, "one").msg == "1.0 current"
