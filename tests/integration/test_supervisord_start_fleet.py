"""A supervisord start that does not reach RUNNING and stay there fails the task (issue 20,
item 7): on the SSH fleet, with programs that crash at once or soon after start."""

from __future__ import annotations

from pathlib import Path

import pytest

import cdlib
from cdlib import Play, tasks
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _play(command: str, state: str = "started", start_secs: int = 1) -> Play:
    play = Play("svc", hosts="all")
    play.task(
        tasks.service(
            "loop",
            state=state,
            backend="supervisord",
            command=command,
            start_secs=start_secs,
        )
    )
    return play


def _failure(result: cdlib.RunResult) -> str:
    msgs = [r.msg for r in result.results if r.status.value == "failed"]
    assert msgs, [(r.task, r.status, r.msg) for r in result.results]
    return msgs[0]


def test_crash_looping_program_fails_the_start_every_run(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    first = cdlib.run(_play("sh -c 'exit 1'"), inv)
    assert not first.ok
    msg = _failure(first)
    assert "did not stay RUNNING" in msg and "loop" in msg, msg
    # The program is now FATAL or still in BACKOFF: a re-run must not call that started.
    again = cdlib.run(_play("sh -c 'exit 1'"), inv)
    assert not again.ok and "did not stay RUNNING" in _failure(again)


def test_program_dying_just_after_startsecs_fails(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    res = cdlib.run(_play("sh -c 'sleep 1.4; exit 1'"), inv)
    assert not res.ok
    assert "did not stay RUNNING" in _failure(res)


def test_healthy_program_starts_and_rerun_changes_nothing(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    first = cdlib.run(_play("sleep 600"), inv)
    assert first.ok, _failure(first)
    again = cdlib.run(_play("sleep 600"), inv)
    assert again.ok and not any(r.changed for r in again.results), again.results
    restarted = cdlib.run(_play("sleep 600", state="restarted"), inv)
    assert restarted.ok
    status = fleet.ssh(1, "supervisorctl -c /etc/cdlib-host/supervisord.conf status loop")
    assert "RUNNING" in status.stdout, status.stdout
