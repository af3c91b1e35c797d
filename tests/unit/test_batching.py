"""Consecutive independent changes of a host run in one remote command, and nothing else
about a run changes: per-task results, their order, failures, check mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cdlib
from cdlib import Host, Inventory, Play, Status, tasks
from cdlib.api import HostContext, Plan, Task
from cdlib.engine.execute import _script, _split
from cdlib.inventory.model import Group


def _inv() -> Inventory:
    h = Host("h1", {"ansible_connection": "local"}, ["web"])
    return Inventory(
        [h], {"all": Group("all", children=["web"]), "web": Group("web", hosts=["h1"])}
    )


def _run(play: Play, **kw: object) -> tuple[cdlib.RunResult, cdlib.api.Connection]:
    conns: list[cdlib.api.Connection] = []

    def factory(host: Host) -> cdlib.api.Connection:
        conns.append(cdlib.api.connection_for(host))
        return conns[-1]

    res = cdlib.run([play], _inv(), connection_factory=factory, **kw)  # type: ignore[arg-type]
    return res, conns[0]


def test_independent_changes_cost_one_command_with_their_own_stdin(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    for k in range(4):
        play.task(tasks.directory(f"{tmp_path}/d{k}", mode="0750"))
    for k in range(4):
        play.task(tasks.file(f"{tmp_path}/d{k}/f", content=f"content {k}\n" * (k + 1)))
    play.task(tasks.line_in_file(f"{tmp_path}/d0/env", "A=1", create=True))
    play.task(tasks.symlink(f"{tmp_path}/cur", f"{tmp_path}/d1"))
    res, conn = _run(play)
    assert res.ok, [(r.task, r.msg) for r in res.results]
    assert [r.status for r in res.results] == [Status.CHANGED] * 10
    assert [r.index for r in res.results] == list(range(10))
    for k in range(4):
        assert (tmp_path / f"d{k}").stat().st_mode & 0o777 == 0o750
        assert (tmp_path / f"d{k}" / "f").read_text() == f"content {k}\n" * (k + 1)
    assert (tmp_path / "d0" / "env").read_text() == "A=1\n"
    assert (tmp_path / "cur").resolve() == tmp_path / "d1"
    # the fact read, then every change in one command
    assert conn.stats.round_trips == 2

    again, conn = _run(play)
    assert again.ok and again.changed() == set()
    assert conn.stats.round_trips == 1


def test_a_failing_change_reports_that_task_and_stops_the_rest(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.directory(f"{tmp_path}/a"))
    # Planned fine (its parent exists); only mkdir finds that /proc takes no directories.
    play.task(tasks.directory("/proc/cdlib-batch-test"))
    play.task(tasks.directory(f"{tmp_path}/c"))
    play.task(tasks.file(f"{tmp_path}/a/f", content="x"))
    res, _ = _run(play)
    assert not res.ok
    assert [(r.task, r.status) for r in res.results] == [
        (f"directory {tmp_path}/a", Status.CHANGED),
        ("directory /proc/cdlib-batch-test", Status.FAILED),
    ]
    bad = res.results[1]
    assert bad.msg.startswith("command failed (exit 1): ") and "cdlib-batch-test" in bad.msg
    assert bad.index == 1
    # what came before ran; what came after did not
    assert (tmp_path / "a").is_dir()
    assert not (tmp_path / "c").exists() and not (tmp_path / "a" / "f").exists()


def test_a_failing_plan_comes_after_the_held_changes_before_it(tmp_path: Path) -> None:
    (tmp_path / "b").write_text("a file, not a directory")
    play = Play("p", hosts="all")
    play.task(tasks.directory(f"{tmp_path}/a"))
    play.task(tasks.directory(f"{tmp_path}/b"))
    play.task(tasks.directory(f"{tmp_path}/c"))
    res, _ = _run(play)
    assert [r.status for r in res.results] == [Status.CHANGED, Status.FAILED]
    assert (tmp_path / "a").is_dir() and not (tmp_path / "c").exists()


def test_results_keep_play_order_around_held_changes(tmp_path: Path) -> None:
    (tmp_path / "same").write_text("same")
    play = Play("p", hosts="all")
    play.task(tasks.file(f"{tmp_path}/one", content="1"))
    play.task(tasks.file(f"{tmp_path}/same", content="same"))
    play.task(tasks.file(f"{tmp_path}/never", content="x", when="false"))
    play.task(tasks.file(f"{tmp_path}/two", content="2", notify="h"))
    play.handler("h", tasks.file(f"{tmp_path}/handled", content="h"))
    seen: list[tuple[str, str]] = []
    res, _ = _run(
        play,
        sinks=[
            cdlib.CallbackSink(
                lambda ev: (
                    seen.append((str(ev["task"]), str(ev["status"])))
                    if ev.get("event") == "task_result"
                    else None
                )
            )
        ],
    )
    assert res.ok
    assert [s for _, s in seen] == ["changed", "ok", "skipped", "changed", "changed"]
    assert [r.index for r in res.results] == [0, 1, 2, 3, 0]
    assert (tmp_path / "handled").read_text() == "h"


def test_a_change_that_a_later_task_reads_runs_before_it_plans(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.file(f"{tmp_path}/f", content="old\n"))
    play.task(tasks.line_in_file(f"{tmp_path}/f", "new"))
    play.task(tasks.command(f"cat {tmp_path}/f", read_only=True))
    res, _ = _run(play)
    assert res.ok
    assert (tmp_path / "f").read_text() == "old\nnew\n"
    assert res.results[2].msg == "old\nnew"  # the command saw both changes


def test_check_mode_holds_nothing_and_changes_nothing(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.directory(f"{tmp_path}/d"))
    play.task(tasks.file(f"{tmp_path}/d/f", content="x"))
    res, _ = _run(play, check=True)
    assert res.ok and len(res.changed()) == 2
    assert [r.status for r in res.results] == [Status.CHANGED, Status.CHANGED]
    assert not (tmp_path / "d").exists()


def test_batch_script_frames_each_command() -> None:
    script, stdin, marker = _script(
        [("cat", b"ab", False), ("true", None, False), ("head -c1", b"cd", False)]
    )
    assert stdin == b"abcd"
    import subprocess

    p = subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True)
    outs = _split(p.stdout.decode(), marker)
    assert [o for o, _ in outs] == ["ab", "", "c", ""]
    assert [c for _, c in outs] == [0, 0, 0, 0]
    script, stdin, marker = _script(
        [("head -c2", b"ef", True), ("exit 3", None, False), ("echo never", None, False)]
    )
    p = subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True)
    assert p.returncode == 3
    assert _split(p.stdout.decode(), marker) == [("ef", 0), ("", 3), ("", 0)]


@dataclass
class _Appends(Task[Plan]):
    """Batchable, but its apply reads a command's exit code: it must run alone."""

    path: str
    batchable = True
    kind = "appends"

    def plan(self, ctx: HostContext) -> Plan:
        return Plan(changes=["append"], affects=[self.path])

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        res = ctx.run(f"echo appended >> {self.path}; cat {self.path}", check=False)
        return res.stdout.strip().replace("\n", "|")


def test_an_apply_a_batch_cannot_hold_runs_alone_after_the_held_changes(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.file(f"{tmp_path}/f", content="first\n"))
    play.task(_Appends(f"{tmp_path}/f"))
    play.task(tasks.file(f"{tmp_path}/g", content="g"))
    res, conn = _run(play)
    assert res.ok, [r.msg for r in res.results]
    # the append ran after the held write, alone, and saw its output
    assert res.results[1].msg == "first|appended"
    assert (tmp_path / "f").read_text() == "first\nappended\n"
    # fact read; the write (sent before the append); the append; the last write
    assert conn.stats.round_trips == 4


def test_a_later_task_compares_with_the_host_not_with_a_guess(tmp_path: Path) -> None:
    """A held change's prediction only answers 'what kind of thing is there': a task that
    compares attributes reads the host once the batch ran."""
    play = Play("p", hosts="all")
    play.task(tasks.directory(f"{tmp_path}/d"))
    play.task(tasks.file(f"{tmp_path}/d/f", content="x"))
    play.task(tasks.directory(f"{tmp_path}/d", mode="0700"))
    res, conn = _run(play)
    assert res.ok, [(r.task, r.msg) for r in res.results]
    # The mode found is the one mkdir left (umask), never an unknown stand-in.
    assert res.results[2].changes == ["mode 0755 -> 0700"], res.results[2].changes
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
    # the fact read, the first two changes, then the third after reading the host again
    assert conn.stats.round_trips == 3


def test_a_notified_handler_survives_a_failure_later_in_the_same_batch(
    tmp_path: Path, keep_handler_markers: None
) -> None:
    """The handler's marker runs right after the batched change that notified it, so a
    failure further on in the same command leaves the handler to the next run."""
    # Markers live in a directory of the host, keyed by play: a play of its own.
    play = Play(f"marker {tmp_path}", hosts="all")
    play.task(tasks.file(f"{tmp_path}/conf", content="1", notify="reload"))
    play.task(tasks.directory("/proc/cdlib-batch-test", when="fail | default(true)"))
    play.handler("reload", tasks.file(f"{tmp_path}/reloaded", content="yes"))
    res, conn = _run(play, extra_vars={"fail": True})
    assert not res.ok and not (tmp_path / "reloaded").exists()
    assert [r.status for r in res.results] == [Status.CHANGED, Status.FAILED]
    assert conn.stats.round_trips == 2  # the marker cost nothing of its own
    again, _ = _run(play, extra_vars={"fail": False})
    assert again.ok, [(r.task, r.msg) for r in again.results]
    assert (tmp_path / "reloaded").read_text() == "yes"
    assert any(r.task == "pending handlers" for r in again.results)
