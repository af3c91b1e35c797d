"""Release tasks on this machine (local connection): check mode sees earlier predicted steps."""

from __future__ import annotations

from pathlib import Path

import cdlib
from cdlib import Play, Status, tasks
from tests.sample_app import build_release


def test_check_mode_predicts_a_chain_of_release_tasks(tmp_path: Path) -> None:
    builds = {v: build_release(v, tmp_path / "dist") for v in ("1.0.0", "1.1.0")}
    root = str(tmp_path / "app")
    play = Play("chain", hosts="all")
    for v in ("1.0.0", "1.1.0"):
        play.task(tasks.install("app", v, str(builds[v]), root=root, env={"A": v}))
    play.task(tasks.mark_bad("app", "1.1.0", root=root, reason="test"))
    play.task(tasks.install_rollback("app", root=root))

    checked = cdlib.run(play, check=True)
    assert checked.ok, [(r.task, r.msg) for r in checked.results if r.status is Status.FAILED]
    assert not Path(root).exists()
    real = cdlib.run(play)
    assert real.ok, [(r.task, r.msg) for r in real.results if r.status is Status.FAILED]
    assert real.changed() == checked.changed() and len(real.changed()) == 4
    assert [r.changes for r in real.results] == [r.changes for r in checked.results]
    assert Path(root, "current").resolve().name == "1.0.0"
    # Without predictions the check run would fail at mark_bad (1.1.0 not installed yet).
    assert [r.changes for r in checked.results][2:] == [
        ["mark 1.1.0 bad"],
        ["switch current 1.1.0 -> 1.0.0"],
    ]
