"""Errors of the flags package, each naming the file, flag and field at fault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cdlib.errors import EXIT_BAD_INPUT, CdlibError

Severity = Literal["error", "warning"]


class FlagsError(CdlibError):
    """Base class of errors raised by :mod:`cdlib.flags`."""

    exit_code = EXIT_BAD_INPUT


class FlagFileError(FlagsError):
    """A flag file cannot be read or parsed (bad JSON/YAML, missing file)."""


class FlagSourceError(FlagFileError):
    """The flag file or parameter cannot be read at all (missing, no access)."""


class UnknownFlagError(FlagsError, KeyError):
    """A flag key is not defined in the document."""

    def __init__(self, key: str, source: str) -> None:
        super().__init__(f"{source}: flag {key!r} is not defined")
        self.key = key
        self.source = source

    def __str__(self) -> str:
        return str(self.args[0])


class FlagChangeError(FlagsError):
    """A requested change does not fit the flag (unknown variant, bad weights)."""


@dataclass(frozen=True)
class Problem:
    """One finding of validation or lint: where it is and what is wrong."""

    severity: Severity
    message: str
    location: str
    flag: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.flag is not None:
            where.append(f"flag {self.flag!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        scope = f" {', '.join(where)}:" if where else ""
        return f"{self.location}: {self.severity}:{scope} {self.message}"


class FlagValidationError(FlagsError):
    """A flag document breaks flagd's rules; ``problems`` lists every error found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        lines = "\n".join(f"  {p}" for p in errors)
        super().__init__(f"invalid flag configuration ({len(errors)} error(s)):\n{lines}")
