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


def test_pause_countdown_shows_time_left_and_latest_metrics() -> None:
    sink = ConsoleSink(io.StringIO())
    show = {"release": "demo", "step": "analysis at 10%"}
    sink.progress({"kind": "pause", **show, "pause": 60.0, "left": 60.0, "metrics": {}})
    sink.progress(
        {
            "kind": "pause",
            **show,
            "pause": None,
            "left": 42.0,
            "requests": 40,
            "metrics": {
                "error_rate": (0.2, 0.05, "fail"),
                "response_time_ms": (12.0, None, "pass"),
            },
        }
    )
    line = console._strip(sink.live_lines()[-1])
    assert line.startswith("analysis at 10%; 42s left of 60s; ")
    assert "error_rate 20.00% (max 5.00%) fail; response_time_ms 12 pass; 40 requests" in line
    sink.progress({"kind": "pause_end", **show})
    assert sink.live_lines() == []


def test_results_are_grouped_per_task_and_recap_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.play_start("p", ["web10", "web2", "web1"], False)
    for i, host in [(0, "web10"), (1, "web10"), (0, "web2"), (0, "web1"), (1, "web1")]:
        r = TaskResult("p", host, f"task{i} on {host}", Status.OK, duration=0.5)
        r.index = i
        sink.task_result(r)
    # web2 fails its next task: it is out of the play, so task 1 is complete without it.
    assert "task1" not in out.getvalue()
    bad = TaskResult("p", "web2", "task1 on web2", Status.FAILED, "boom")
    bad.index = 1
    sink.task_result(bad)
    run = RunResult()
    for h in ("web10", "web2", "web1"):
        run.stats[h] = HostStats(ok=1)
    sink.run_end(run)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    assert lines[1].startswith("TASK [task0 on web10] 3/3 host(s)")
    assert [ln.split()[1] for ln in lines[2:5]] == ["[web1]", "[web2]", "[web10]"]
    assert lines[5].startswith("TASK [task1 on web10] 3/3 host(s)")
    assert lines[-3:] == [ln for ln in lines[-3:] if ln.startswith("web")]
    assert [ln.split()[0] for ln in lines[-3:]] == ["web1", "web2", "web10"]


def test_a_handler_on_some_hosts_prints_before_the_next_play() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.play_start("one", ["a", "b"], False)
    r = TaskResult("one", "a", "restart app", Status.CHANGED, handler=True)
    r.index = 0
    sink.task_result(r)
    sink.play_start("two", ["a", "b"], False)
    text = out.getvalue()
    assert text.index("restart app") < text.index("PLAY [two]")
