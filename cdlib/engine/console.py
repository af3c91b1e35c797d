"""Human output: results grouped per task, diffs on request, live progress, a recap."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from cdlib.engine.results import RunResult, TaskResult
from cdlib.engine.task import Status

_TAG = re.compile(r"(?<!\\)\[/?[a-z ]*\]")

_COLORS = {
    Status.OK: "green",
    Status.CHANGED: "yellow",
    Status.FAILED: "red",
    Status.SKIPPED: "cyan",
    Status.UNREACHABLE: "bold red",
}


class _Plain:
    """Stands in for rich's Console off a terminal: the same text, no markup, no import.

    rich costs ~70 ms to import; logs, pipes and CI never show its colours anyway.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.is_terminal = False

    def print(self, markup: str) -> None:
        self.stream.write(_strip(markup) + "\n")


@dataclass
class _Task:
    """The results of one task of a play so far, printed together once complete."""

    name: str
    handler: bool
    results: list[TaskResult] = field(default_factory=list)

    @property
    def hosts(self) -> set[str]:
        return {r.host for r in self.results}


@dataclass
class _Play:
    """A play being printed: its hosts, those out of it, its tasks not printed yet."""

    name: str
    hosts: list[str]
    dead: set[str] = field(default_factory=set)
    pending: dict[tuple[int | str, bool], _Task] = field(default_factory=dict)

    def complete(self, t: _Task) -> bool:
        # Every host still in the play reported: hosts that failed earlier never will.
        return set(self.hosts) - self.dead <= t.hosts


class ConsoleSink:
    """Prints results grouped per task, sorted by host; a live progress view on a terminal.

    A task's lines come together once every host still in the play reported it (or the
    play or run ends), so parallel hosts do not interleave. On a terminal a live view
    under the output shows each running task's hosts done/total and a canary pause's
    countdown with the latest metrics; off a terminal the text is plain, without rich.
    """

    def __init__(
        self, stream: IO[str] | None = None, *, diff: bool = False, verbose: bool = False
    ) -> None:
        self.stream = stream or sys.stdout
        self.diff = diff
        self.verbose = verbose
        self.console: Any
        if _wants_rich(self.stream):
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
            self.tty = self.console.is_terminal
            self._esc = _esc
        else:
            self.console = _Plain(self.stream)
            self.tty = False
            self._esc = _esc_plain
        self._live: Any = None
        self._plays: dict[str, _Play] = {}
        #: The canary pause in progress: its last progress event and when it came.
        self._pause: tuple[dict[str, Any], float] | None = None

    # -- EventSink ---------------------------------------------------------------
    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        """``PLAY [name] (check mode) on N hosts``."""
        # What earlier plays still hold (handlers ran on some hosts only, a host that
        # never reported) prints now, before the next play's header.
        for p in self._plays.values():
            self._flush(p, everything=True)
        self._plays.pop(play, None)
        mode = " (check mode)" if check else ""
        self._plays[play] = _Play(play, list(hosts))
        if self.tty and self._live is None:
            from rich.live import Live

            self._live = Live(
                _LiveView(self), console=self.console, refresh_per_second=4, transient=True
            )
            self._live.start()
        self.console.print(
            f"\n[bold]PLAY \\[{self._esc(play)}]{mode}[/bold] on {len(hosts)} host(s)"
        )

    def task_result(self, r: TaskResult) -> None:
        """Keep the result with its task's; print the task's block once it is complete."""
        p = self._plays.get(r.play)
        if p is None:
            self._line(r)
            return
        key = (r.index if r.index is not None else r.task, r.handler)
        t = p.pending.get(key)
        if t is None:
            t = p.pending[key] = _Task(r.task, r.handler)
        t.results.append(r)
        if r.status is Status.UNREACHABLE or (r.status is Status.FAILED and not r.ignored):
            p.dead.add(r.host)
        self._flush(p)

    def progress(self, event: Mapping[str, Any]) -> None:
        """A canary pause: keep the latest state for the live view (terminal only)."""
        if event.get("kind") == "pause_end":
            self._pause = None
        elif event.get("kind") == "pause":
            ev = dict(event)
            if self._pause is not None and ev.get("pause") is None:
                ev["pause"] = self._pause[0].get("pause")
            if not ev.get("metrics") and self._pause is not None:
                ev["metrics"] = self._pause[0].get("metrics", {})
            self._pause = (ev, time.monotonic())

    def run_end(self, result: RunResult) -> None:
        """Print what is left, stop the live view, then the recap sorted by host."""
        for p in list(self._plays.values()):
            self._flush(p, everything=True)
        self._plays.clear()
        self._pause = None
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print("\n[bold]PLAY RECAP[/bold]")
        width = max((len(h) for h in result.stats), default=0)
        for host in sorted(result.stats, key=host_sort_key):
            s = result.stats[host]
            color = "red" if s.failed or s.unreachable else "yellow" if s.changed else "green"
            self.console.print(
                f"[{color}]{self._esc(f'{host:<{width}}')}[/{color}] : ok={s.ok:<4} "
                f"changed={s.changed:<4} unreachable={s.unreachable:<4} failed={s.failed:<4} "
                f"skipped={s.skipped:<4} ignored={s.ignored}"
            )
        if result.aborted:
            self.console.print(f"[red]aborted: {self._esc(result.aborted)}[/red]")

    # -- printing ------------------------------------------------------------------
    def _flush(self, p: _Play, *, everything: bool = False) -> None:
        for key, t in list(p.pending.items()):
            if everything or p.complete(t):
                del p.pending[key]
                self._block(p, t)

    def _block(self, p: _Play, t: _Task) -> None:
        if len(p.hosts) > 1:
            took = max((r.duration for r in t.results), default=0.0)
            kind = "HANDLER" if t.handler else "TASK"
            self.console.print(
                f"[bold]{kind} \\[{self._esc(t.name)}][/bold] [dim]{len(t.results)}/"
                f"{len(p.hosts)} host(s), slowest {_secs(took)}[/dim]"
            )
        for r in sorted(t.results, key=lambda r: host_sort_key(r.host)):
            self._line(r)

    def _line(self, r: TaskResult) -> None:
        """``changed  [host]  task  (changes)  1.2s`` and the message or diff under it."""
        color = _COLORS[r.status]
        label = r.status.value + (" (handler)" if r.handler else "")
        line = f"[{color}]{label:<12}[/{color}] \\[{self._esc(r.host)}] {self._esc(r.task)}"
        if r.changes and r.status is Status.CHANGED:
            line += f" [dim]({self._esc('; '.join(r.changes)[:120])})[/dim]"
        if r.duration:
            line += f" [dim]{_secs(r.duration)}[/dim]"
        self.console.print(line)
        if r.status in (Status.FAILED, Status.UNREACHABLE) and r.msg:
            where = f" at {r.origin}" if r.origin else ""
            self.console.print(f"    [{color}]{self._esc(r.msg)}[/{color}][dim]{where}[/dim]")
        elif (
            r.msg
            and r.msg != "; ".join(r.changes)
            and (self.verbose or r.host.startswith("release:"))
        ):
            self.console.print(f"    [dim]{self._esc(r.msg)}[/dim]")
        if self.diff and r.diff:
            for dl in r.diff.splitlines():
                style = "green" if dl.startswith("+") else "red" if dl.startswith("-") else "dim"
                self.console.print(f"    [{style}]{self._esc(dl)}[/{style}]")

    # -- live view -------------------------------------------------------------------
    def live_lines(self) -> list[str]:
        """The live view's lines (markup): running tasks, then a canary pause."""
        out = []
        for p in list(self._plays.values()):
            alive = len(set(p.hosts) - p.dead)
            for t in list(p.pending.values()):
                out.append(
                    f"[cyan]running[/cyan] {self._esc(t.name)} "
                    f"[bold]{len(t.hosts)}/{alive}[/bold] host(s) [dim]({self._esc(p.name)})[/dim]"
                )
        if self._pause is not None:
            out.append(self._pause_line(*self._pause))
        return out

    def _pause_line(self, ev: Mapping[str, Any], at: float) -> str:
        left = max(0.0, float(ev.get("left") or 0) - (time.monotonic() - at))
        pause = ev.get("pause")
        total = f" of {float(pause):.0f}s" if pause else ""
        parts = [f"[magenta]{self._esc(str(ev.get('step', 'pause')))}[/magenta]"]
        parts.append(f"[bold]{left:.0f}s left[/bold]{total}")
        metrics = ev.get("metrics") or {}
        for name, (value, threshold, verdict) in dict(metrics).items():
            parts.append(_metric(str(name), value, threshold, str(verdict)))
        if ev.get("requests") is not None:
            parts.append(f"{ev['requests']} requests")
        return "; ".join(parts)


class _LiveView:
    """What rich's Live redraws (a few times a second): the sink's live lines."""

    def __init__(self, sink: ConsoleSink) -> None:
        self.sink = sink

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text.from_markup("\n".join(self.sink.live_lines()) or " ")


def _metric(name: str, value: Any, threshold: Any, verdict: str) -> str:
    color = {"fail": "red", "pass": "green"}.get(verdict, "yellow")
    rate = name == "error_rate"

    def fmt(x: Any) -> str:
        if x is None:
            return "-"
        return f"{float(x):.2%}" if rate else f"{float(x):.0f}"

    limit = f" (max {fmt(threshold)})" if threshold is not None else ""
    return f"{name} [{color}]{fmt(value)}[/{color}]{limit} {verdict}"


def _secs(seconds: float) -> str:
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def host_sort_key(host: str) -> tuple[Any, ...]:
    """Sort key for host names in natural order (``web2`` before ``web10``)."""
    return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in re.split(r"(\d+)", host))


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _wants_rich(stream: IO[str]) -> bool:
    # As rich decides: a terminal, or colours forced through the environment.
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _esc_plain(text: str) -> str:
    # Marks the text as literal for _strip: tags inside it are not tags.
    return _LIT + text.replace(_LIT, "") + _LIT


#: Delimits literal text in plain mode (cannot appear in task names or messages).
_LIT = "\x00"


def _strip(markup: str) -> str:
    """The text rich would print for ``markup`` built by ConsoleSink (tags removed)."""
    out = []
    for i, chunk in enumerate(markup.split(_LIT)):
        if i % 2:
            out.append(chunk)  # literal (escaped) text
        else:
            out.append(_TAG.sub("", chunk).replace("\\[", "["))
    return "".join(out)
