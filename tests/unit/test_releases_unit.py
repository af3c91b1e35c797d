"""Release decisions, parsers, lock snippets and script pieces, without a fleet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cdlib import tasks
from cdlib.engine.errors import PlaybookError
from cdlib.facts.release import ReleaseState, parse_log, parse_release_state
from cdlib.install.lock import (
    HELD_EXIT,
    LockOwner,
    acquire_command,
    held_message,
    parse_owner,
    release_command,
)
from cdlib.install.scripts import config_tar, install_script
from cdlib.install.state import install_order, previous_good, to_prune
from cdlib.tasks import install, install_rollback
from cdlib.tasks.install import env_file_content


def _state(
    versions: list[str], current: str | None = None, bad: tuple[str, ...] = ()
) -> ReleaseState:
    log = [{"action": "install", "version": v} for v in versions]
    return ReleaseState(
        root="/srv/a",
        exists=True,
        current=f"/srv/a/releases/{current}" if current else None,
        releases=dict.fromkeys(versions, 0),
        bad=frozenset(bad),
        log=log,
    )


def test_parse_release_state_from_canned_output() -> None:
    import base64

    log = '{"action":"install","version":"1.0"}\nnot json\n{"action":"install","version":"2.0"}\n'
    out = "\n".join(
        [
            "exists=1",
            "current=/srv/a/releases/2.0",
            "release=100 1.0",
            "release=200 2.0",
            "bad=1.0",
            "lock=" + base64.b64encode(b'{"user":"u"}').decode(),
            "log=" + base64.b64encode(log.encode()).decode(),
            "revision=" + base64.b64encode(b"version=2.0\nbuild_sha256=abc\n").decode(),
            "file=0 deadbeef",
            "link=0 /srv/a/shared/logs",
        ]
    )
    st = parse_release_state(out, "/srv/a/", files=[".env"], links=["logs", "tmp"])
    assert st.exists and st.current_version == "2.0"
    assert st.releases == {"1.0": 100, "2.0": 200}
    assert st.bad == {"1.0"}
    assert st.lock == '{"user":"u"}'
    assert st.revision == {"version": "2.0", "build_sha256": "abc"}
    assert st.files == {".env": "deadbeef"}
    assert st.links == {"logs": "/srv/a/shared/logs", "tmp": None}
    assert [r["version"] for r in st.log] == ["1.0", "2.0"]
    assert parse_release_state("exists=0\n", "/srv/a") == ReleaseState(root="/srv/a")


def test_parse_log_skips_torn_lines() -> None:
    assert parse_log('{"a":1}\n{"b":\n[1]\n\n') == [{"a": 1}]


def test_install_order_uses_the_log_then_mtime_for_unknown() -> None:
    st = ReleaseState(
        root="/r",
        releases={"b": 5, "a": 9, "old": 1, "x": 0},
        log=[{"action": "install", "version": "b"}, {"action": "install", "version": "a"}],
    )
    assert install_order(st) == ["x", "old", "b", "a"]


def test_previous_good_skips_bad_and_later_ones() -> None:
    st = _state(["1", "2", "3", "4"], current="4", bad=("3",))
    assert previous_good(st, "4") == "2"
    assert previous_good(st, "2") == "1"
    assert previous_good(st, "1") is None
    assert previous_good(_state(["1", "2"], current="2", bad=("1",)), "2") is None


def test_to_prune_keeps_n_and_never_current_or_previous() -> None:
    st = _state(["1", "2", "3", "4", "5", "6"], current="6")
    assert to_prune(st, 5, "7", ["6"]) == ["1", "2"]
    # current rolled back to the oldest: it survives, as does the protected previous.
    st = _state(["1", "2", "3", "4"], current="1")
    assert to_prune(st, 2, "5", ["1"]) == ["2", "3", "4"]
    assert to_prune(st, 5, "5", ["1"]) == []


def test_lock_owner_roundtrip_and_message() -> None:
    o = LockOwner("alice", "laptop", 42, 1767225600.0, "tok")
    assert parse_owner(o.to_json()) == o
    assert parse_owner("") is None
    assert parse_owner("garbage").user == "unknown"  # type: ignore[union-attr]
    msg = held_message("app", "web1", "/srv/app/.cdlib/deploy.lock", o.to_json(), 5)
    assert "alice@laptop pid 42 since 2026-01-01T00:00:00Z" in msg
    assert "web1" in msg and "waited 5s" in msg


def test_lock_snippets_exclude_each_other_and_release_only_their_own(tmp_path: Path) -> None:
    lock = str(tmp_path / "x" / "deploy.lock")
    a = LockOwner("a", "h", 1, 0.0, "token-a")
    b = LockOwner("b", "h", 2, 0.0, "token-b")

    def sh(cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30)

    assert sh(acquire_command(lock, a, 0)).returncode == 0
    second = sh(acquire_command(lock, b, 0.3))
    assert second.returncode == HELD_EXIT
    assert json.loads(second.stdout)["token"] == "token-a"
    assert sh(release_command(lock, b)).returncode == 0
    assert Path(lock).exists(), "b released a's lock"
    sh(release_command(lock, a))
    assert not Path(lock).exists()
    assert sh(acquire_command(lock, b, 0)).returncode == 0


def test_install_script_removes_what_a_dead_install_left(tmp_path: Path) -> None:
    """A run killed mid-upload or mid-unpack leaves its temp dirs (no trap ran); the next
    install (under the deploy lock) removes them and nothing else."""
    import hashlib
    import io
    import tarfile

    root = tmp_path / "app"
    for d in ("releases/1.0.0", "releases/.1.1.0.cdlib-Ab12Cd", ".cdlib/.config.Xy34Zw"):
        (root / d).mkdir(parents=True)
    (root / "releases/.1.1.0.cdlib-Ab12Cd/VERSION").write_text("1.1.0\n")  # half unpacked
    (root / ".cdlib/.config.Xy34Zw/.build.tar.gz").write_bytes(b"\x1f\x8b partial")
    (root / "releases/.keep").write_text("not ours")
    (root / ".cdlib/releases.jsonl").write_text("")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("VERSION")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"1.1.0\n"))
    build = raw.getvalue()
    conf = config_tar({})
    script = install_script(
        root=str(root),
        version="1.1.0",
        sha256=hashlib.sha256(build).hexdigest(),
        upload=True,
        config_size=len(conf),
        config_files=[],
        shared_dirs=[],
        shared_files=[],
        owner=None,
        group=None,
        check_cmd=None,
        switch=True,
        prune=[],
        records={k: {"action": k, "version": "1.1.0"} for k in ("install", "activate")},
    )
    res = subprocess.run(["sh", "-c", script], input=conf + build, capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (root / "releases").iterdir()) == [".keep", "1.0.0", "1.1.0"]
    assert sorted(p.name for p in (root / ".cdlib").iterdir()) == ["bad", "releases.jsonl"]
    assert (root / "current/VERSION").read_text() == "1.1.0\n"


def test_env_file_reads_back_through_sh(tmp_path: Path) -> None:
    from cdlib import Secret

    env = {"A": "plain", "B": 'it\'s $HOME `x` "q"', "C": Secret("s3cr3t"), "D": 5}
    f = tmp_path / ".env"
    f.write_bytes(env_file_content(env))
    out = subprocess.run(
        ["sh", "-c", f'set -a; . "{f}"; printf "%s|%s|%s|%s" "$A" "$B" "$C" "$D"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == 'plain|it\'s $HOME `x` "q"|s3cr3t|5'


def test_release_options_are_validated() -> None:
    with pytest.raises(PlaybookError, match="'version'"):
        install("app", "1.0/../x", "b.tgz")
    with pytest.raises(PlaybookError, match="relative path inside the release"):
        install("app", "1.0", "b.tgz", shared_dirs=["../etc"])
    with pytest.raises(PlaybookError, match="keep"):
        install("app", "1.0", "b.tgz", keep=1)
    with pytest.raises(PlaybookError, match="not a valid environment variable"):
        install("app", "1.0", "b.tgz", env={"A-B": "x"})
    with pytest.raises(PlaybookError, match="clash"):
        install("app", "1.0", "b.tgz", templates={"t.j2": "logs"}, shared_dirs=["logs"])
    assert install_rollback("app").describe() == "install_rollback app"


def test_the_old_task_names_still_work_and_keep_their_labels() -> None:
    # Playbooks written before the rename use tasks.release / tasks.rollback.
    old = tasks.release("app", "1.0", "b.tgz", keep=3)
    assert isinstance(old, tasks.Install)
    assert old.describe() == "release app 1.0"
    assert install("app", "1.0", "b.tgz").describe() == "install app 1.0"
    assert isinstance(tasks.rollback("app"), tasks.InstallRollback)
    assert tasks.rollback("app", to="1.0").describe() == "rollback app to 1.0"
    with pytest.raises(PlaybookError, match="keep"):
        tasks.release("app", "1.0", "b.tgz", keep=1)
    for alias in (tasks.Release, tasks.Rollback):
        assert "Deprecated" in (alias.__doc__ or "")
