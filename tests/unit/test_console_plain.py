"""Off a terminal the console prints without rich, and must print exactly what rich would."""

from __future__ import annotations

import io

import pytest

from cdlib.engine import console
from cdlib.engine.console import ConsoleSink
from cdlib.engine.results import HostStats, RunResult, TaskResult
from cdlib.engine.task import Status

RESULTS = [
    TaskResult("p", "host1", "directory /srv/app", Status.OK, "fine"),
    TaskResult(
        "p",
        "web[1]",
        "template [bold]x[/bold] -> /etc/a\\b",
        Status.CHANGED,
        "m",
        diff="--- a\n+++ b\n-[red]old\n+new \\[x]\n ctx",
        changes=["content", "mode 0600 -> 0644"],
    ),
    TaskResult("p", "host2", "command x", Status.FAILED, "exit 1: [error] no\\", origin="pb.py:3"),
    TaskResult("p", "host3", "connect", Status.UNREACHABLE, "refused", origin="pb.py:1"),
    TaskResult("p", "host1", "skip me", Status.SKIPPED, "condition is false", handler=True),
]


def _render(use_rich: bool, monkeypatch: pytest.MonkeyPatch, verbose: bool) -> str:
    monkeypatch.setattr(console, "_wants_rich", lambda stream: use_rich)
    out = io.StringIO()
    sink = ConsoleSink(out, diff=True, verbose=verbose)
    sink.play_start("Deploy [app] \\ now", ["host1", "web[1]", "host2", "host3"], True)
    run = RunResult(check=True)
    for r in RESULTS:
        sink.task_result(r)
        run.stats.setdefault(r.host, HostStats()).add(r)
    run.aborted = "any_errors_fatal: [x] failed"
    sink.run_end(run)
    return out.getvalue()


@pytest.mark.parametrize("verbose", [False, True])
def test_plain_output_is_what_rich_prints(monkeypatch: pytest.MonkeyPatch, verbose: bool) -> None:
    plain = _render(False, monkeypatch, verbose)
    rich = _render(True, monkeypatch, verbose)
    assert "PLAY RECAP" in plain and "host3" in plain
    assert plain == rich


def test_no_rich_import_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    sink = ConsoleSink(io.StringIO())
    assert not sink.tty
    assert type(sink.console).__module__ == "cdlib.engine.console"
