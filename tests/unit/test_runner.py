"""Runner semantics with the local transport: handlers, serial, failures, run_once, check."""

from __future__ import annotations

from pathlib import Path

import pytest

import cdlib
from cdlib import Host, Inventory, Play, Status, tasks
from cdlib.engine.contract import RunContext, Scope


def _inv(tmp_path: Path, n: int = 4) -> Inventory:
    hosts = [
        Host(f"h{i}", {"ansible_connection": "local", "dir": str(tmp_path / f"h{i}")}, ["web"])
        for i in range(1, n + 1)
    ]
    from cdlib.inventory.model import Group

    return Inventory(
        hosts,
        {"all": Group("all", children=["web"]), "web": Group("web", hosts=[h.name for h in hosts])},
    )


def test_handlers_run_once_only_where_notified(tmp_path: Path) -> None:
    (tmp_path / "h2").mkdir()
    (tmp_path / "h2" / "conf").write_text("v1\n")
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir }}"))
    play.task(tasks.file("{{ dir }}/conf", content="v1\n", notify="restart"))
    play.task(tasks.file("{{ dir }}/other", content="x", notify="restart"))
    play.handler("restart", tasks.command("echo . >> {{ dir }}/restarts"))
    res = cdlib.run(play, _inv(tmp_path, 2))
    assert res.ok
    assert (tmp_path / "h1" / "restarts").read_text() == ".\n"  # two notifications, one run
    assert (tmp_path / "h2" / "restarts").read_text() == ".\n"
    again = cdlib.run(play, _inv(tmp_path, 2))
    assert again.changed() == set()
    assert (tmp_path / "h1" / "restarts").read_text() == ".\n"
    assert not any(r.handler for r in again.results)


def test_failed_host_stops_only_itself_and_exit_code(tmp_path: Path) -> None:
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir }}"))
    play.task(tasks.command("test {{ inventory_hostname }} != h2"))
    play.task(tasks.file("{{ dir }}/done", content="ok"))
    res = cdlib.run(play, _inv(tmp_path, 3))
    assert res.failed_hosts == ["h2"]
    assert res.exit_code == cdlib.EXIT_FAILED
    assert (tmp_path / "h1" / "done").exists() and (tmp_path / "h3" / "done").exists()
    assert not (tmp_path / "h2" / "done").exists()
    failed = next(r for r in res.results if r.status is Status.FAILED)
    assert failed.exception is not None and "exit 1" in failed.msg
    assert failed.origin.startswith("tests/unit/test_runner.py:")


def test_max_fail_percentage_stops_later_batches(tmp_path: Path) -> None:
    play = Play("p", hosts="web", serial=2, max_fail_percentage=10)
    play.task(tasks.command("test {{ inventory_hostname }} != h1"))
    play.task(tasks.directory("{{ dir }}"))
    res = cdlib.run(play, _inv(tmp_path, 4))
    assert res.aborted and "max_fail_percentage" in res.aborted
    assert not (tmp_path / "h3").exists() and not (tmp_path / "h4").exists()
    assert (tmp_path / "h2").exists()


def test_any_errors_fatal_and_ignore_errors(tmp_path: Path) -> None:
    play = Play("p", hosts="web", any_errors_fatal=True, forks=1)
    play.task(tasks.command("false", ignore_errors=True))
    play.task(tasks.command("test {{ inventory_hostname }} != h1"))
    play.task(tasks.directory("{{ dir }}"))
    res = cdlib.run(play, _inv(tmp_path, 3), forks=1)
    assert res.aborted and "any_errors_fatal" in res.aborted
    assert res.stats["h1"].ignored == 1
    assert not any((tmp_path / f"h{i}").exists() for i in (1, 2, 3))


def test_run_once_runs_on_one_host_and_others_wait(tmp_path: Path) -> None:
    marker = tmp_path / "once"
    play = Play("p", hosts="web")
    play.task(tasks.command(f"sleep 0.2; echo . >> {marker}", run_once=True))
    play.task(tasks.command(f"test -f {marker}", read_only=True))
    res = cdlib.run(play, _inv(tmp_path, 4))
    assert res.ok, [r.msg for r in res.results]
    assert marker.read_text() == ".\n"


def test_when_condition_and_check_mode_agree_with_real_run(tmp_path: Path) -> None:
    play = Play("p", hosts="web", vars={"enabled": ["h1", "h3"]})
    play.task(tasks.directory("{{ dir }}"))
    play.task(tasks.file("{{ dir }}/f", content="hello {{ inventory_hostname }}\n", mode="0600"))
    play.task(tasks.symlink("{{ dir }}/link", "{{ dir }}/f"))
    play.task(
        tasks.command(
            "touch {{ dir }}/t",
            creates="{{ dir }}/t",
            when="inventory_hostname in enabled",
            name="touch t",
        )
    )
    inv = _inv(tmp_path, 3)
    predicted = cdlib.run(play, inv, check=True, diff=True)
    assert not any((tmp_path / f"h{i}").exists() for i in (1, 2, 3))
    real = cdlib.run(play, inv)
    assert predicted.changed() == real.changed()
    assert ("h1", "touch t") in real.changed() and ("h2", "touch t") not in real.changed()
    assert [r.status for r in real.for_host("h2") if r.task == "touch t"] == [Status.SKIPPED]
    assert (tmp_path / "h1" / "t").exists() and not (tmp_path / "h2" / "t").exists()
    assert oct((tmp_path / "h1" / "f").stat().st_mode & 0o777) == "0o600"
    # a mode drift is detected and fixed without rewriting content
    (tmp_path / "h1" / "f").chmod(0o644)
    fix = cdlib.run(play, inv, check=True)
    assert fix.changed() == {("h1", f"file {tmp_path}/h1/f")}


def test_missing_src_and_wrong_type_fail_before_anything(tmp_path: Path) -> None:
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir }}"))
    play.task(tasks.file("{{ dir }}/x", src="does-not-exist.txt"))
    # One error for the problem, naming every host it was found on.
    with pytest.raises(cdlib.PlaybookError, match=r"host h1, h2: .*does-not-exist"):
        cdlib.run(play, _inv(tmp_path, 2))
    assert not (tmp_path / "h1").exists()


def test_check_mode_sees_predicted_state_of_earlier_tasks(tmp_path: Path) -> None:
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir }}", mode="0750"))
    play.task(tasks.file("{{ dir }}/a", content="x\n"))
    play.task(tasks.command("echo run", creates="{{ dir }}/a", name="guarded"))
    play.task(tasks.file("{{ dir }}/a", content="x\n", name="same content again"))
    play.task(tasks.symlink("{{ dir }}/l", "{{ dir }}/a"))
    play.task(tasks.symlink("{{ dir }}/l", "{{ dir }}/a", name="same link again"))
    inv = _inv(tmp_path, 1)
    predicted = cdlib.run(play, inv, check=True)
    real = cdlib.run(play, inv)
    assert predicted.changed() == real.changed()
    assert ("h1", "guarded") not in real.changed()
    assert ("h1", "same content again") not in real.changed()
    assert ("h1", "same link again") not in real.changed()


def test_extra_vars_do_not_change_the_callers_inventory(tmp_path: Path) -> None:
    inv = _inv(tmp_path, 2)
    before = {h.name: dict(h.vars) for h in inv.hosts.values()}
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir }}/{{ sub }}"))
    r = cdlib.run(play, inv, extra_vars={"sub": "one"})
    assert r.ok, r.results
    assert (tmp_path / "h1" / "one").is_dir()
    # The run saw the extra var; the caller's hosts did not get it.
    assert {h.name: h.vars for h in inv.hosts.values()} == before
    # 'sub' is undefined without -e: nothing leaked from the first run.
    with pytest.raises(cdlib.PlaybookError, match=r"host h1, h2: .*'sub'"):
        cdlib.run(play, inv)


class _Nested:
    """A playbook item of its own: runs a play inside the run, as a release deploy does."""

    def __init__(self, play: Play) -> None:
        from cdlib.engine.errors import Origin

        self.play = play
        self.origin = Origin("nested.py", 1)
        self.sub: cdlib.RunResult | None = None

    @property
    def label(self) -> str:
        return "nested"

    def validate(self, scope: Scope[cdlib.Play]) -> list[cdlib.PlaybookError]:
        return scope.check_plays([self.play], limit="h1", extra_vars={"sub": "n"})

    def execute(self, ctx: RunContext[cdlib.Play]) -> None:
        ctx.start("nested", ["h1"])
        self.sub = ctx.run_plays([self.play], limit="h1", extra_vars={"sub": "n"})


def test_an_item_runs_plays_inside_the_run_and_they_count_once(tmp_path: Path) -> None:
    from cdlib.engine.contract import Runnable

    inner = Play("inner", hosts="web")
    inner.task(tasks.directory("{{ dir }}/{{ sub }}"))
    item = _Nested(inner)
    assert isinstance(item, Runnable)
    events: list[dict[str, object]] = []
    r = cdlib.run([item], _inv(tmp_path, 2), sinks=[cdlib.CallbackSink(events.append)])
    assert r.ok and item.sub is not None
    assert (tmp_path / "h1" / "n").is_dir() and not (tmp_path / "h2" / "n").exists()
    assert item.sub.results and all(x in r.results for x in item.sub.results)
    assert len(r.results) == len(item.sub.results) == 1
    assert r.stats["h1"].changed == 1  # counted once, in the run and the nested result
    kinds = [e["event"] for e in events]
    # One run: the nested play announces itself, and the run ends once.
    assert kinds.count("recap") == 1 and kinds[-1] == "recap"
    assert [e["play"] for e in events if e["event"] == "play_start"] == ["nested", "inner"]


def test_an_items_validation_error_stops_everything_before_it_runs(tmp_path: Path) -> None:
    first = Play("first", hosts="web")
    first.task(tasks.directory("{{ dir }}/first"))
    bad = Play("bad", hosts="web")
    bad.task(tasks.directory("{{ dir }}/{{ undefined_var }}"))
    with pytest.raises(cdlib.PlaybookError, match="undefined_var"):
        cdlib.run([first, _Nested(bad)], _inv(tmp_path, 2))
    assert not (tmp_path / "h1" / "first").exists()
