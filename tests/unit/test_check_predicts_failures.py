"""Check mode predicts the writes a real run cannot do (local transport)."""

from __future__ import annotations

from pathlib import Path

import cdlib
from cdlib import Host, Inventory, Play, Status, tasks


def _run(play: Play, check: bool) -> list[cdlib.TaskResult]:
    inv = Inventory([Host("h1", {"ansible_connection": "local"})])
    return cdlib.run(play, inv, check=check).results


def test_writes_into_a_missing_directory_fail_in_check_mode_as_in_the_real_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.conf").write_text("x\n")
    missing = tmp_path / "nope" / "deeper"
    writers = [
        tasks.file(f"{missing}/a", content="a\n"),
        tasks.copy(str(tmp_path / "app.conf"), f"{missing}/b"),
        tasks.symlink(f"{missing}/c", "/etc/hostname"),
        tasks.line_in_file(f"{missing}/d", line="x=1", create=True),
    ]
    for task in writers:
        play = Play("p", hosts="all")
        play.task(task)
        for check in (True, False):
            (r,) = _run(play, check)
            assert r.status is Status.FAILED, (task.label, check, r.msg)
            assert f"directory {missing} does not exist" in r.msg, r.msg
            assert "mktemp" not in r.msg
    assert not (tmp_path / "nope").exists()


def test_a_directory_an_earlier_task_creates_counts_in_check_mode(tmp_path: Path) -> None:
    base = tmp_path / "srv"
    play = Play("p", hosts="all")
    play.task(tasks.directory(f"{base}/app/conf"))  # mkdir -p makes srv/ and srv/app/ too
    play.task(tasks.file(f"{base}/app/conf/a.ini", content="a\n"))
    play.task(tasks.file(f"{base}/app/VERSION", content="1\n"))
    play.task(tasks.symlink(f"{base}/app/current", f"{base}/app/conf"))
    play.task(tasks.file(f"{base}/app/current/b.ini", content="b\n"))
    checked = _run(play, check=True)
    assert [r.status for r in checked] == [Status.CHANGED] * 5, [r.msg for r in checked]
    real = _run(play, check=False)
    assert [r.status for r in real] == [Status.CHANGED] * 5, [r.msg for r in real]
    assert (base / "app/conf/b.ini").read_text() == "b\n"


def test_an_owner_or_group_that_does_not_exist_fails_in_check_mode(tmp_path: Path) -> None:
    for kw, word in (
        ({"owner": "cdlib-nobody-x"}, "owner"),
        ({"group": "cdlib-nogroup-x"}, "group"),
    ):
        play = Play("p", hosts="all")
        play.task(tasks.file(str(tmp_path / "f"), content="x\n", **kw))  # type: ignore[arg-type]
        for check in (True, False):
            (r,) = _run(play, check)
            assert r.status is Status.FAILED, r.msg
            assert f"{word} 'cdlib-no" in r.msg and "does not exist" in r.msg
        assert not (tmp_path / "f").exists()
    # A user task earlier in the same check run makes the owner exist.
    play = Play("p", hosts="all")
    play.task(tasks.user("cdlib-nobody-x"))
    play.task(tasks.file(str(tmp_path / "f"), content="x\n", owner="cdlib-nobody-x"))
    assert [r.status for r in _run(play, check=True)] == [Status.CHANGED, Status.CHANGED]
