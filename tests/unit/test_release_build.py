"""Build tarballs whose symlinks would make release writes land outside the release dir."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from cdlib.engine.errors import PlaybookError
from cdlib.install.build import (
    BuildRefused,
    Member,
    check_build,
    check_members,
    resolve,
)
from cdlib.install.scripts import no_escaping_links, no_symlink_on_way
from cdlib.tasks import release

WRITES = ["conf/app.ini", ".env"]


@pytest.mark.parametrize(
    ("members", "named"),
    [
        # Absolute target: the REVISION write (or the app) would go there.
        ([("REVISION", "sym", "/srv/victim")], "'REVISION' is a symlink to '/srv/victim'"),
        ([("conf", "sym", "/srv/other")], "'conf' is a symlink to '/srv/other'"),
        # Relative, climbing out of the release.
        ([("REVISION", "sym", "../../victim")], "'REVISION' is a symlink to '../../victim'"),
        ([("./d/x", "sym", "../../victim")], "'./d/x' is a symlink to '../../victim'"),
        # A chain: each link looks harmless alone, the last one leaves.
        (
            [("a", "sym", "b"), ("b", "sym", "c/d"), ("c", "sym", "."), ("d", "sym", "..")],
            "'a' is a symlink to 'b', outside the release (it leads outside the release via 'd'",
        ),
        ([("a", "sym", "d/b"), ("d/b", "sym", "../../x")], "via 'd/b' -> '../../x'"),
        # A link unpacked through a symlinked directory resolves from where it lands.
        (
            [("d", "sym", "s/t"), ("s/t/u", "other", None), ("d/l", "sym", "../../../x")],
            "'d/l' is a symlink to '../../../x'",
        ),
        # A hard link to a symlink is that symlink at another depth.
        ([("a/b/l", "sym", "../../x"), ("h", "hard", "a/b/l")], "'h' is a symlink"),
        ([("h", "hard", "../etc/passwd")], "'h' is a hard link to '../etc/passwd'"),
        ([("/etc/cron.d/x", "other", None)], "'/etc/cron.d/x' has a path outside"),
        ([("a/../../x", "other", None)], "has a path outside"),
        ([("a", "sym", "b"), ("b", "sym", "a")], "loop of symlinks"),
        # Inside, but cdlib writes conf/app.ini through it.
        ([("conf", "sym", "etc"), ("etc", "other", None)], "writes 'conf/app.ini' through it"),
    ],
)
def test_escaping_members_are_refused_naming_member_and_target(
    members: list[tuple[str, str, str | None]], named: str
) -> None:
    with pytest.raises(BuildRefused) as err:
        check_members(members, WRITES)
    assert named in str(err.value)


def test_links_that_stay_inside_are_fine() -> None:
    members = [
        ("./bin/app", "other", None),
        ("current-bin", "sym", "bin/app"),
        ("lib/x/up", "sym", "../../bin"),
        ("self", "sym", "."),
        ("dangling", "sym", "nowhere/yet"),
        ("REVISION", "sym", "VERSION"),  # replaced on install, never written through
        ("h", "hard", "bin/app"),
    ]
    check_members(members, WRITES)
    assert resolve("a/c/../d", {"a": Member("a", "b/e")}) == ("b/e/d", "")


def _tarball(path: Path, members: list[tuple[str, str | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, link in members:
            info = tarfile.TarInfo(name)
            if link is None:
                data = b"x\n"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
    return path


def test_check_build_reads_the_tarball(tmp_path: Path) -> None:
    good = _tarball(tmp_path / "good.tar.gz", [("VERSION", None), ("v", "VERSION")])
    check_build(good, WRITES)
    bad = _tarball(tmp_path / "bad.tar.gz", [("VERSION", None), ("conf", "/srv/other")])
    with pytest.raises(BuildRefused, match="'conf' is a symlink to '/srv/other'"):
        check_build(bad, WRITES)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(BuildRefused, match="cannot read it as a tar archive"):
        check_build(tmp_path / "junk.tar.gz", WRITES)


def test_release_task_refuses_the_build_before_any_host(tmp_path: Path) -> None:
    from cdlib.engine.templating import Templar

    bad = _tarball(tmp_path / "b.tar.gz", [("VERSION", None), ("REVISION", "/etc/passwd")])
    task = release("app", "1.0", str(bad))
    with pytest.raises(PlaybookError) as err:
        task.prepare({}, Templar(search_path=[tmp_path]))
    assert "'REVISION' is a symlink to '/etc/passwd'" in str(err.value)
    assert str(bad) in str(err.value)


def test_config_under_a_shared_link_is_refused() -> None:
    with pytest.raises(PlaybookError, match="inside shared path 'logs'"):
        release("app", "1.0", "b.tgz", templates={"t.j2": "logs/x.ini"}, shared_dirs=["logs"])


def _sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_host_side_checks_on_a_real_tree(tmp_path: Path) -> None:
    rel = tmp_path / "rel"
    (rel / "sub").mkdir(parents=True)
    (rel / "in").symlink_to("sub")
    (rel / "sub" / "up").symlink_to("../in")
    assert _sh(f"d={rel}; {no_escaping_links('$d')}").returncode == 0
    (rel / "sub" / "chain").symlink_to("../in/../..")
    res = _sh(f"d={rel}; {no_escaping_links('$d')}")
    assert res.returncode == 1
    assert "build member sub/chain is a symlink to ../in/../.., outside" in res.stderr
    (rel / "sub" / "chain").unlink()
    (rel / "abs").symlink_to(str(rel / "sub"))  # absolute, even when it lands inside
    assert "build member abs is a symlink to" in _sh(f"d={rel}; {no_escaping_links('$d')}").stderr
    (rel / "abs").unlink()

    (rel / "conf").symlink_to(str(tmp_path))
    res = _sh(f"d={rel}; {no_symlink_on_way('$d', 'conf/app.ini')}; echo wrote")
    assert res.returncode == 1 and "wrote" not in res.stdout
    assert f"refusing to write conf/app.ini in the release: conf is a symlink to {tmp_path}" in (
        res.stderr
    )
    assert _sh(f"d={rel}; {no_symlink_on_way('$d', 'sub/x/app.ini')}").returncode == 0
