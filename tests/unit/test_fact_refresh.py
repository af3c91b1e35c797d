"""Facts a change makes stale are re-read by the change command itself, and stay right."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cdlib
from cdlib import Host, Inventory, Play, TaskFailed, tasks
from cdlib.api import HostContext, Plan, Task
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.inventory.model import Group


@dataclass
class _Report(Task):
    """Reports a file's content as seen through the fact cache (no command of its own)."""

    path: str
    kind = "report"

    def facts(self) -> list[Fact]:
        return [PathFact(self.path)]

    def plan(self, ctx: HostContext) -> Plan:
        st: FileState = ctx.fact(PathFact(self.path))
        return Plan(ok_msg=f"{st.kind}:{(st.content or b'').decode()}:{st.sha256}")


@dataclass
class _Echo(Task):
    """Runs a command through HostContext.run and reports its output and exit code."""

    cmd: str
    kind = "echo"

    def plan(self, ctx: HostContext) -> Plan:
        return Plan(changes=["run"], affects=["/"])

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        res = ctx.run(self.cmd, stdin=b"in-data", check=False)
        if res.exit_code == 7:
            raise TaskFailed(f"exit 7, stdout {res.stdout!r}")
        return f"[{res.stdout}|{res.exit_code}|{res.command}]"


def _inv() -> Inventory:
    h = Host("h1", {"ansible_connection": "local"}, ["web"])
    return Inventory(
        [h], {"all": Group("all", children=["web"]), "web": Group("web", hosts=["h1"])}
    )


def _run(play: Play) -> tuple[cdlib.RunResult, cdlib.api.Connection]:
    conns: list[cdlib.api.Connection] = []

    def factory(host: Host) -> cdlib.api.Connection:
        conns.append(cdlib.api.connection_for(host))
        return conns[-1]

    return cdlib.run(play, _inv(), connection_factory=factory), conns[0]


def test_changes_carry_the_reread_and_later_tasks_see_the_new_state(tmp_path: Path) -> None:
    d = tmp_path / "app"
    play = Play("p", hosts="all")
    play.task(tasks.directory(str(d)))
    play.task(tasks.file(f"{d}/a", content="one\n"))
    play.task(_Report(f"{d}/a"))
    play.task(tasks.file(f"{d}/a", content="two\n"))
    play.task(_Report(f"{d}/a"))
    res, conn = _run(play)
    assert res.ok, [r.msg for r in res.results]
    msgs = [r.msg for r in res.results]
    assert msgs[2].startswith("file:one\n:") and msgs[4].startswith("file:two\n:")
    import hashlib

    assert msgs[4].endswith(hashlib.sha256(b"two\n").hexdigest())
    # one fact read, then one command per run of batched changes (the directory and
    # the first write go together; each report needs the change before it made): no
    # round trip to re-read facts
    assert conn.stats.round_trips == 1 + 2


def test_command_output_exit_code_and_stdin_are_the_commands_own(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.file(str(tmp_path / "x"), content="x"))
    play.task(_Echo("printf 'out:'; cat; printf ':'; echo err >&2; exit 3"))
    play.task(_Report(str(tmp_path / "x")))
    res, _ = _run(play)
    echo = res.results[1]
    assert echo.msg == "[out:in-data:|3|printf 'out:'; cat; printf ':'; echo err >&2; exit 3]"
    assert res.results[2].msg.startswith("file:x:")


def test_exit_and_set_e_in_a_command_do_not_lose_the_exit_code(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.file(str(tmp_path / "x"), content="x"))
    play.task(_Echo("set -e\necho partial\nfalse\necho never"))
    play.task(_Echo("echo bye; exit 7"))
    res, _ = _run(play)
    assert res.results[1].msg == "[partial\n|1|set -e\necho partial\nfalse\necho never]"
    assert res.results[2].status is cdlib.Status.FAILED
    assert res.results[2].msg == "exit 7, stdout 'bye\\n'"


def test_prefetched_read_only_command_costs_no_round_trip_when_nothing_changes(
    tmp_path: Path,
) -> None:
    f = tmp_path / "v"
    f.write_text("1\n")
    play = Play("p", hosts="all")
    play.task(tasks.file(str(f), content="1\n"))
    play.task(tasks.command(f"cat {f}", read_only=True, prefetch=True, chdir=str(tmp_path)))
    res, conn = _run(play)
    assert res.ok and res.changed() == set()
    assert res.results[1].msg == "1"
    assert conn.stats.round_trips == 1  # the fact read ran the command too


def test_prefetched_command_after_a_change_sees_the_change(tmp_path: Path) -> None:
    f = tmp_path / "v"
    f.write_text("old\n")
    play = Play("p", hosts="all")
    play.task(tasks.file(str(f), content="new\n"))
    play.task(tasks.command(f"cat {f}", read_only=True, prefetch=True, env={"X": "y z"}))
    res, conn = _run(play)
    assert res.ok and res.results[1].msg == "new"
    assert conn.stats.round_trips == 2  # fact read, then the write (which re-ran the command)


def test_failing_prefetched_command_reports_like_any_command(tmp_path: Path) -> None:
    play = Play("p", hosts="all")
    play.task(tasks.command("echo oops >&2; exit 4", read_only=True, prefetch=True))
    res, _ = _run(play)
    assert res.results[0].status is cdlib.Status.FAILED
    assert res.results[0].msg == "exit 4: oops"


def test_prefetch_needs_a_plain_read_only_command() -> None:
    import pytest

    with pytest.raises(cdlib.PlaybookError, match="needs read_only"):
        tasks.command("true", prefetch=True)
    with pytest.raises(cdlib.PlaybookError, match="stdin, timeout"):
        tasks.command("true", read_only=True, prefetch=True, stdin="x", timeout=3)
