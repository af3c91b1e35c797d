"""Checks other than HTTP: TCP port, command, process, service and file.

Each check has an observation type and a pure :meth:`evaluate`; probing lives in
:mod:`cdlib.checks.probes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from cdlib.checks.base import Check, Where, as_tuple, is_template
from cdlib.checks.report import Failure, FailureKind, Outcome, excerpt
from cdlib.connections.base import CommandResult

# -- TCP ----------------------------------------------------------------------


@dataclass(frozen=True)
class TcpResult:
    """Whether a TCP connection could be opened, and why not."""

    connected: bool
    error: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class TcpCheck(Check):
    """``host:port`` accepts TCP connections (or, with ``open=False``, refuses them).

    ``port`` may be a template string in a suite; it must render to a number.
    """

    host: str
    port: int | str
    open: bool = True

    default_on: ClassVar[Where] = "control"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.port, str):
            if is_template(self.port):
                return
            if not self.port.strip().isdigit():
                raise ValueError(f"TCP port must be a number, got {self.port!r}")
            object.__setattr__(self, "port", int(self.port))
        if not 0 < int(self.port) < 65536:
            raise ValueError(f"TCP port must be 1..65535, got {self.port}")

    def describe(self) -> str:
        """``tcp host:port``."""
        return f"tcp {self.host}:{self.port}"

    def evaluate(self, obs: TcpResult) -> Outcome:
        """The verdict on a connection attempt."""
        seen = "open" if obs.connected else f"closed ({obs.error or 'no answer'})"
        if obs.connected == self.open:
            return Outcome(observed=seen)
        if self.open:
            kind = FailureKind.TIMEOUT if obs.timed_out else FailureKind.CONNECT
            return Outcome.fail(kind, f"{self.host}:{self.port} is {seen}, expected open", seen)
        return Outcome.fail(
            FailureKind.CONNECT, f"{self.host}:{self.port} is open, expected closed", seen
        )


# -- command --------------------------------------------------------------------


@dataclass(frozen=True)
class CommandCheck(Check):
    """``command`` (run with ``sh -c``) exits with ``exit_code`` and prints what is expected.

    ``stdout_contains`` / ``stderr_contains`` are substrings, ``stdout_regex`` a
    ``re.search`` pattern. ``sudo`` escalates as the connection's become settings say.
    """

    command: str
    exit_code: int | tuple[int, ...] = 0
    stdout_contains: str | tuple[str, ...] = ()
    stdout_regex: str | None = None
    stderr_contains: str | tuple[str, ...] = ()
    sudo: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "stdout_contains", as_tuple(self.stdout_contains, "stdout_contains")
        )
        object.__setattr__(
            self, "stderr_contains", as_tuple(self.stderr_contains, "stderr_contains")
        )
        if self.stdout_regex is not None:
            re.compile(self.stdout_regex)

    @property
    def exit_codes(self) -> tuple[int, ...]:
        """The accepted exit codes."""
        return (self.exit_code,) if isinstance(self.exit_code, int) else tuple(self.exit_code)

    def describe(self) -> str:
        """``command: <first 60 chars>``."""
        return f"command {excerpt(self.command, 60)}"

    def evaluate(self, res: CommandResult) -> Outcome:
        """The verdict on a command's result."""
        failures: list[Failure] = []
        if res.exit_code not in self.exit_codes:
            want = " or ".join(str(c) for c in self.exit_codes)
            failures.append(
                Failure(FailureKind.EXIT_CODE, f"exit code {res.exit_code}, expected {want}")
            )
        for sub in self.stdout_contains:
            if sub not in res.stdout:
                failures.append(Failure(FailureKind.OUTPUT, f"stdout does not contain {sub!r}"))
        if self.stdout_regex is not None and not re.search(self.stdout_regex, res.stdout):
            failures.append(
                Failure(FailureKind.OUTPUT, f"stdout does not match /{self.stdout_regex}/")
            )
        for sub in self.stderr_contains:
            if sub not in res.stderr:
                failures.append(Failure(FailureKind.OUTPUT, f"stderr does not contain {sub!r}"))
        observed = f"exit {res.exit_code}; stdout: {excerpt(res.stdout)}"
        if res.stderr:
            observed += f"; stderr: {excerpt(res.stderr)}"
        return Outcome(tuple(failures), observed)


# -- process and service ----------------------------------------------------------


@dataclass(frozen=True)
class ProcessList:
    """Processes seen on the target: ``(pid, command line)`` pairs."""

    processes: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class ProcessCheck(Check):
    """At least ``min_count`` processes whose command line matches ``pattern`` (``re.search``).

    With ``running=False`` the check passes only when none match.
    """

    pattern: str
    running: bool = True
    min_count: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        re.compile(self.pattern)
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")

    def describe(self) -> str:
        """``process /pattern/``."""
        return f"process /{self.pattern}/"

    def evaluate(self, obs: ProcessList) -> Outcome:
        """The verdict on a process listing."""
        rx = re.compile(self.pattern)
        hits = [(pid, cmd) for pid, cmd in obs.processes if rx.search(cmd)]
        observed = excerpt("; ".join(f"{pid} {cmd}" for pid, cmd in hits) or "no match")
        if self.running and len(hits) < self.min_count:
            return Outcome.fail(
                FailureKind.NOT_RUNNING,
                f"{len(hits)} process(es) match /{self.pattern}/, expected at least "
                f"{self.min_count}",
                observed,
            )
        if not self.running and hits:
            return Outcome.fail(
                FailureKind.NOT_RUNNING,
                f"{len(hits)} process(es) match /{self.pattern}/, expected none",
                observed,
            )
        return Outcome(observed=observed)


@dataclass(frozen=True)
class ServiceState:
    """A service manager's answer: ``active``, ``inactive``, ``failed``, ..."""

    state: str
    manager: str


@dataclass(frozen=True)
class ServiceCheck(Check):
    """Service ``service`` is active (systemd, else SysV ``service``); ``running=False``: not."""

    service: str
    running: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not re.fullmatch(r"[A-Za-z0-9@._:\-]+", self.service):
            raise ValueError(f"service name {self.service!r} has characters a unit cannot have")

    def describe(self) -> str:
        """``service name``."""
        return f"service {self.service}"

    def evaluate(self, obs: ServiceState) -> Outcome:
        """The verdict on a service state."""
        active = obs.state == "active"
        seen = f"{self.service} is {obs.state} ({obs.manager})"
        if active == self.running:
            return Outcome(observed=seen)
        want = "active" if self.running else "not active"
        return Outcome.fail(FailureKind.NOT_RUNNING, f"{seen}, expected {want}", seen)


# -- file -------------------------------------------------------------------------

FileKind = Literal["file", "directory"]


@dataclass(frozen=True)
class FileState:
    """What is at a path: nothing, a directory, or a file and (the start of) its content."""

    kind: Literal["missing", "file", "directory", "other"]
    content: str = ""
    truncated: bool = False


@dataclass(frozen=True)
class FileCheck(Check):
    """``path`` exists (or not, ``exists=False``), is of ``kind`` and has the content expected.

    ``contains`` substrings and ``regex`` apply to the first ``max_bytes`` of the file.
    """

    path: str
    exists: bool = True
    kind: FileKind | None = None
    contains: str | tuple[str, ...] = ()
    regex: str | None = None
    sudo: bool | None = None
    max_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "contains", as_tuple(self.contains, "contains"))
        if self.regex is not None:
            re.compile(self.regex)
        if self.kind not in (None, "file", "directory"):
            raise ValueError(f"file kind must be 'file' or 'directory', got {self.kind!r}")
        if not self.path.startswith("/") and not is_template(self.path):
            raise ValueError(f"file check path must be absolute, got {self.path!r}")

    @property
    def reads_content(self) -> bool:
        """Whether the probe must fetch the file's content."""
        return bool(self.contains) or self.regex is not None

    def describe(self) -> str:
        """``file /path``."""
        return f"file {self.path}"

    def evaluate(self, obs: FileState) -> Outcome:
        """The verdict on what is at the path."""
        seen = obs.kind if obs.kind != "file" else f"file: {excerpt(obs.content)}"
        if not self.exists:
            if obs.kind == "missing":
                return Outcome(observed=seen)
            return Outcome.fail(
                FailureKind.MISSING, f"{self.path} exists ({obs.kind}), expected absent", seen
            )
        if obs.kind == "missing":
            return Outcome.fail(FailureKind.MISSING, f"{self.path} does not exist", seen)
        failures: list[Failure] = []
        if self.kind is not None and obs.kind != self.kind:
            failures.append(
                Failure(FailureKind.MISSING, f"{self.path} is a {obs.kind}, expected {self.kind}")
            )
        if self.reads_content and obs.kind == "file":
            cut = f" (first {self.max_bytes} bytes)" if obs.truncated else ""
            for sub in self.contains:
                if sub not in obs.content:
                    failures.append(
                        Failure(FailureKind.CONTENT, f"{self.path}{cut} does not contain {sub!r}")
                    )
            if self.regex is not None and not re.search(self.regex, obs.content, re.M):
                failures.append(
                    Failure(FailureKind.CONTENT, f"{self.path}{cut} does not match /{self.regex}/")
                )
        elif self.reads_content:
            failures.append(
                Failure(FailureKind.CONTENT, f"{self.path} is a {obs.kind}, cannot check content")
            )
        return Outcome(tuple(failures), seen)


__all__ = [
    "CommandCheck",
    "FileCheck",
    "FileState",
    "ProcessCheck",
    "ProcessList",
    "ServiceCheck",
    "ServiceState",
    "TcpCheck",
    "TcpResult",
]
