"""Run controls: tags on plays, --start-at-task, --step, --list-hosts, --syntax-check and
the retry file, run on local hosts."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import cdlib
from cdlib import Host, Inventory, Play, Status, tasks
from cdlib.cli.main import main as cli_main
from cdlib.engine.errors import PlaybookError
from cdlib.engine.selection import tags_selected
from cdlib.inventory.model import Group


def _inv(tmp_path: Path, n: int = 2) -> Inventory:
    hosts = [
        Host(f"h{i}", {"ansible_connection": "local", "dir": str(tmp_path / f"h{i}")}, ["web"])
        for i in range(1, n + 1)
    ]
    for h in hosts:
        Path(h.vars["dir"]).mkdir(exist_ok=True)
    return Inventory(
        hosts,
        {"all": Group("all", children=["web"]), "web": Group("web", hosts=[h.name for h in hosts])},
    )


def _play(n: int = 4) -> Play:
    play = Play("p", hosts="web")
    for i in range(1, n + 1):
        play.task(tasks.command(f"touch {{{{ dir }}}}/t{i}", name=f"t{i}", tags=[f"tag{i}"]))
    return play


def _ran(tmp_path: Path, host: str = "h1") -> list[str]:
    return sorted(p.name for p in (tmp_path / host).iterdir())


def test_tag_rules() -> None:
    assert tags_selected([]) and tags_selected(["x"]) and not tags_selected(["never"])
    assert tags_selected(["always"], ["x"]) and not tags_selected(["always"], ["x"], ["always"])
    assert tags_selected(["never", "x"], ["x"]) and not tags_selected(["never", "x"], ["all"])
    # --skip-tags all spares 'always' tasks unless 'always' is skipped too (as Ansible).
    assert tags_selected(["always"], ["all"], ["all"]) and not tags_selected(
        ["x"], ["all"], ["all"]
    )
    assert not tags_selected(["always"], ["all"], ["all", "always"])
    assert tags_selected([], ["untagged"]) and not tags_selected(["x"], ["untagged"])


def test_tags_leave_tasks_out_entirely(tmp_path: Path) -> None:
    res = cdlib.run(_play(), _inv(tmp_path), tags=["tag2", "tag4"])
    assert res.ok
    assert _ran(tmp_path) == ["t2", "t4"]
    assert {r.task for r in res.results} == {"t2", "t4"}  # not even shown as skipped


def test_start_at_task_skips_earlier_tasks_and_plays(tmp_path: Path) -> None:
    first = Play("first", hosts="web")
    first.task(tasks.command("touch {{ dir }}/f1", name="f1"))
    res = cdlib.run([first, _play()], _inv(tmp_path), start_at_task="t[3]")
    assert res.ok
    assert _ran(tmp_path) == ["t3", "t4"]
    with pytest.raises(PlaybookError, match="no task has that name"):
        cdlib.run(_play(), _inv(tmp_path), start_at_task="nope")


def test_step_asks_once_per_task_not_per_host(tmp_path: Path) -> None:
    answers = iter(["y", "n", "c"])
    asked: list[str] = []

    def prompt(play: str, task: str) -> str:
        asked.append(task)
        return next(answers)

    res = cdlib.run(_play(), _inv(tmp_path, 3), step=prompt, forks=3)
    assert asked == ["t1", "t2", "t3"]  # "c": t4 runs without a question
    for h in ("h1", "h2", "h3"):
        assert _ran(tmp_path, h) == ["t1", "t3", "t4"]
    declined = [r for r in res.results if r.task == "t2"]
    assert len(declined) == 3 and all(r.status is Status.SKIPPED for r in declined)


def _book(tmp_path: Path, body: str) -> Path:
    pb = tmp_path / "pb.py"
    pb.write_text("from cdlib import Play, tasks\n" + body)
    inv = tmp_path / "inv.ini"
    inv.write_text(
        "[web]\n" + "".join(f"h{i} ansible_connection=local dir={tmp_path}/h{i}\n" for i in (1, 2))
    )
    for i in (1, 2):
        (tmp_path / f"h{i}").mkdir(exist_ok=True)
    return pb


def _cli(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = cli_main(argv)
    return code, buf.getvalue()


def test_list_hosts_and_syntax_check_touch_nothing(tmp_path: Path) -> None:
    pb = _book(tmp_path, "p = Play('p', hosts='web')\np.task(tasks.command('touch {{ dir }}/x'))\n")
    inv = str(tmp_path / "inv.ini")
    code, out = _cli(["run", str(pb), "-i", inv, "--list-hosts", "--limit", "h2"])
    assert code == 0
    assert "hosts (1):\n      h2\n" in out
    code, out = _cli(["run", str(pb), "-i", inv, "--syntax-check"])
    assert code == 0 and f"playbook: {pb}" in out
    assert not (tmp_path / "h1" / "x").exists()
    bad = _book(tmp_path, "p = Play('p', hosts='web')\np.task(tasks.command('{{ nope }}'))\n")
    assert _cli(["run", str(bad), "-i", inv, "--syntax-check"])[0] == cdlib.EXIT_BAD_INPUT


def test_retry_file_lists_failed_hosts_and_limit_reads_it(tmp_path: Path) -> None:
    pb = _book(
        tmp_path,
        "p = Play('p', hosts='web')\n"
        "p.task(tasks.command('test ! -e {{ dir }}/broken'))\n"
        "p.task(tasks.command('touch {{ dir }}/ran'))\n",
    )
    inv = str(tmp_path / "inv.ini")
    retry = tmp_path / "pb.retry"
    (tmp_path / "h2" / "broken").touch()
    code, _ = _cli(["run", str(pb), "-i", inv, "--retry-file", str(retry)])
    assert code == cdlib.EXIT_FAILED
    assert retry.read_text() == "h2\n"
    (tmp_path / "h1" / "ran").unlink()
    (tmp_path / "h2" / "broken").unlink()
    code, _ = _cli(["run", str(pb), "-i", inv, "--limit", f"@{retry}", "--retry-file", str(retry)])
    assert code == 0
    assert (tmp_path / "h2" / "ran").exists() and not (tmp_path / "h1" / "ran").exists()
    assert not retry.exists()  # every host succeeded: no stale list left behind
