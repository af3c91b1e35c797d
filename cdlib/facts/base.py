"""The fact interface and the batching of several facts into one remote command."""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

#: The type of a fact's value (what :meth:`Fact.parse` returns).
T_co = TypeVar("T_co", covariant=True)


class Fact(ABC, Generic[T_co]):
    """One thing to read from a host: a command and a pure parser of its output.

    ``Fact[T]`` parses to a ``T``, and :meth:`HostContext.fact` returns that type, so a
    task reading ``PathFact(p)`` gets a ``FileState`` without a cast.
    """

    #: Path this fact is about; the engine invalidates it when a task changes that path.
    path: str | None = None
    #: Stale after any change on the host (e.g. the output of a command), whatever its path.
    volatile: bool = False

    @property
    @abstractmethod
    def key(self) -> Hashable:
        """Identity in the per-run cache."""

    @abstractmethod
    def command(self) -> str:
        """A POSIX sh snippet printing what :meth:`parse` reads; must not change anything."""

    @abstractmethod
    def parse(self, output: str, exit_code: int) -> T_co:
        """Turn the snippet's stdout and exit code into a value."""


def batch_script(facts: Sequence[Fact[object]]) -> tuple[str, str]:
    """One sh script that runs every fact's snippet; returns (script, marker).

    Each snippet runs in a subshell so a failing one cannot stop the others, and its
    output is framed by a random marker that no file content can forge.
    """
    marker = "@@cdlib-" + secrets.token_hex(8)
    parts = []
    for i, f in enumerate(facts):
        parts.append(
            f"printf '%s\\n' '{marker} {i}'; ( {f.command()}\n) 2>/dev/null; "
            f"printf '\\n%s %s\\n' '{marker} rc' \"$?\""
        )
    return "\n".join(parts), marker


def split_batch(output: str, marker: str, count: int) -> list[tuple[str, int]]:
    """Split a batch's stdout into ``count`` (output, exit_code) pairs, in order.

    A section missing from the output (the host died mid-batch) gets exit code 255.
    """
    found: dict[int, tuple[str, int]] = {}
    pattern = re.compile(
        rf"^{re.escape(marker)} (\d+)\n(.*?)\n{re.escape(marker)} rc (\d+)$", re.S | re.M
    )
    for m in pattern.finditer(output):
        found[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return [found.get(i, ("", 255)) for i in range(count)]
