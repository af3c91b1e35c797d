"""Where run events go: the console, JSON Lines, or a Python callback."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol

from cdlib.engine.results import RunResult, TaskResult
from cdlib.engine.secrets import Redactor


class EventSink(Protocol):
    """Receives events as the run goes; all calls come with a lock held by the runner."""

    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        """A play begins."""

    def task_result(self, result: TaskResult) -> None:
        """One task finished on one host."""

    def run_end(self, result: RunResult) -> None:
        """The run finished."""


class ProgressSink(Protocol):
    """A sink that also shows progress (optional: :class:`Events` sends ``progress`` only
    to sinks that define it, so sinks written for the three calls above keep working).

    A progress event is a dict with a ``kind``: ``pause`` (a canary pause: ``step``,
    ``left`` seconds, ``pause`` seconds, ``metrics`` as ``{name: (value, threshold,
    verdict)}``, ``requests``) or ``pause_end`` (``step``).
    """

    def progress(self, event: Mapping[str, object]) -> None:
        """How a long step goes; shown, not recorded."""


class Events:
    """Fans events out to sinks with secrets redacted and one lock for ordering.

    This is the one way a run's text reaches a sink (console, JSON Lines, callbacks), so
    every field of every event is redacted here and nowhere else.
    """

    def __init__(self, sinks: list[EventSink], redact: Redactor) -> None:
        self.sinks = sinks
        self.redact = redact
        self._lock = threading.Lock()

    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        """Forward a play start."""
        play = self.redact(play)
        hosts = [self.redact(h) for h in hosts]
        with self._lock:
            for s in self.sinks:
                s.play_start(play, hosts, check)

    def task_result(self, result: TaskResult) -> None:
        """Redact then forward a result."""
        self.redact.result(result)
        with self._lock:
            for s in self.sinks:
                s.task_result(result)

    def progress(self, event: Mapping[str, object]) -> None:
        """Redact then forward a progress event to the sinks that take them."""
        clean = {k: self.redact(v) if isinstance(v, str) else v for k, v in event.items()}
        with self._lock:
            for s in self.sinks:
                fn = getattr(s, "progress", None)
                if fn is not None:
                    fn(clean)

    def run_end(self, result: RunResult) -> None:
        """Forward the end of the run."""
        if result.aborted:
            result.aborted = self.redact(result.aborted)
        with self._lock:
            for s in self.sinks:
                s.run_end(result)


class JsonLinesSink:
    """One JSON object per line: ``play_start``, ``task_result`` ..., ``recap``."""

    def __init__(self, stream: IO[str] | None = None, *, diff: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.diff = diff

    def _write(self, ev: dict[str, Any]) -> None:
        self.stream.write(json.dumps(ev, sort_keys=False, default=str) + "\n")
        self.stream.flush()

    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        """Emit ``play_start``."""
        self._write({"event": "play_start", "play": play, "hosts": hosts, "check": check})

    def task_result(self, result: TaskResult) -> None:
        """Emit ``task_result``."""
        self._write(result.to_event(with_diff=self.diff))

    def run_end(self, result: RunResult) -> None:
        """Emit ``recap``."""
        self._write(result.recap_event())


class CallbackSink:
    """Calls ``fn(event_dict)`` for each event; for tools embedding cdlib."""

    def __init__(self, fn: Callable[[dict[str, Any]], None], *, diff: bool = True) -> None:
        self.fn = fn
        self.diff = diff

    def play_start(self, play: str, hosts: list[str], check: bool) -> None:
        """Forward ``play_start``."""
        self.fn({"event": "play_start", "play": play, "hosts": hosts, "check": check})

    def task_result(self, result: TaskResult) -> None:
        """Forward ``task_result``."""
        self.fn(result.to_event(with_diff=self.diff))

    def run_end(self, result: RunResult) -> None:
        """Forward ``recap``."""
        self.fn(result.recap_event())
