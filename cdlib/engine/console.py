"""Human output: a line per task and host, diffs on request, an Ansible-style recap."""

from __future__ import annotations

import os
import re
import sys
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


class ConsoleSink:
    """Prints results as they come; colours and a progress bar on a terminal."""

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
        self._status: Any = None
        self._done = 0
        self._hosts = 0

    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        """``PLAY [name] (check mode) on N hosts``."""
        mode = " (check mode)" if check else ""
        self._hosts = len(hosts)
        if self.tty and self._status is None:
            # A live status line under the results, only on a terminal.
            self._status = self.console.status("starting ...")
            self._status.start()
        self.console.print(
            f"\n[bold]PLAY \\[{self._esc(play)}]{mode}[/bold] on {len(hosts)} host(s)"
        )

    def task_result(self, r: TaskResult) -> None:
        """``changed  [host]  task  (origin)`` and the message or diff under it."""
        color = _COLORS[r.status]
        label = r.status.value + (" (handler)" if r.handler else "")
        line = f"[{color}]{label:<12}[/{color}] \\[{self._esc(r.host)}] {self._esc(r.task)}"
        if r.changes and r.status is Status.CHANGED:
            line += f" [dim]({self._esc('; '.join(r.changes)[:120])})[/dim]"
        self.console.print(line)
        self._done += 1
        if self._status is not None:
            self._status.update(
                f"{self._done} results from {self._hosts} host(s); last: "
                f"{self._esc(r.host)} {self._esc(r.task)[:60]}"
            )
        if r.status in (Status.FAILED, Status.UNREACHABLE) and r.msg:
            where = f" at {r.origin}" if r.origin else ""
            self.console.print(f"    [{color}]{self._esc(r.msg)}[/{color}][dim]{where}[/dim]")
        elif r.msg and r.msg not in r.changes and (self.verbose or r.host.startswith("release:")):
            self.console.print(f"    [dim]{self._esc(r.msg)}[/dim]")
        if self.diff and r.diff:
            for dl in r.diff.splitlines():
                style = "green" if dl.startswith("+") else "red" if dl.startswith("-") else "dim"
                self.console.print(f"    [{style}]{self._esc(dl)}[/{style}]")

    def run_end(self, result: RunResult) -> None:
        """The recap."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print("\n[bold]PLAY RECAP[/bold]")
        width = max((len(h) for h in result.stats), default=0)
        for host, s in result.stats.items():
            color = "red" if s.failed or s.unreachable else "yellow" if s.changed else "green"
            self.console.print(
                f"[{color}]{host:<{width}}[/{color}] : ok={s.ok:<4} changed={s.changed:<4} "
                f"unreachable={s.unreachable:<4} failed={s.failed:<4} skipped={s.skipped:<4} "
                f"ignored={s.ignored}"
            )
        if result.aborted:
            self.console.print(f"[red]aborted: {self._esc(result.aborted)}[/red]")


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
