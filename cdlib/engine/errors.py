"""Errors with a place: the playbook file and line, the task and the host."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from cdlib.errors import EXIT_BAD_INPUT, CdlibError

__all__ = ["CdlibError", "Origin", "PlaybookError", "PlaybookErrors", "TaskFailed", "suggest"]


@dataclass(frozen=True)
class Origin:
    """Where something was defined: a file and a line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class PlaybookError(CdlibError):
    """Bad input found before any host is touched; the message says where."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        origin: Origin | None = None,
        task: str | None = None,
        host: str | None = None,
    ) -> None:
        self.origin = origin
        self.task = task
        self.host = host
        self.reason = message
        parts = []
        if origin is not None:
            parts.append(str(origin))
        if task is not None:
            parts.append(f"task {task!r}")
        if host is not None:
            parts.append(f"host {host}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class PlaybookErrors(CdlibError):
    """Several :class:`PlaybookError` found while validating a play; all are reported."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, errors: list[PlaybookError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class TaskFailed(CdlibError):
    """A task could not reach its desired state on a host."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ``''``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
