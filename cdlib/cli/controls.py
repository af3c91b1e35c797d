"""Run controls of ``cdlib run``: tag options, listings, ``--step`` and the retry file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from cdlib.atomicfile import write_atomic
from cdlib.engine.results import RunResult
from cdlib.engine.runner import Outline

#: Result lines of a release's own steps name this pseudo host, not an inventory host.
_RELEASE_PREFIX = "release:"


def split_tags(values: Sequence[str]) -> list[str]:
    """``--tags a,b --tags c`` as Ansible reads it: every comma-separated word, in order."""
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def print_outline(
    items: list[Outline], playbook: str, *, tasks: bool, hosts: bool, out: IO[str]
) -> None:
    """Print ``--list-tasks`` / ``--list-hosts`` in the layout of ``ansible-playbook``."""
    out.write(f"\nplaybook: {playbook}\n")
    for n, it in enumerate(items, 1):
        out.write(f"\n  play #{n} ({it.pattern}): {it.label}\tTAGS: [{','.join(it.tags)}]\n")
        if hosts:
            out.write(f"    pattern: [{it.pattern!r}]\n    hosts ({len(it.hosts)}):\n")
            out.writelines(f"      {h}\n" for h in it.hosts)
        if tasks:
            out.write("    tasks:\n")
            for name, own in it.tasks:
                every = sorted({*it.tags, *own})
                out.write(f"      {name}\tTAGS: [{', '.join(every)}]\n")


def step_prompt(ask: Callable[[str], str] = input) -> Callable[[str, str], str]:
    """The ``--step`` question, as Ansible asks it; end of input answers no."""

    def prompt(play: str, task: str) -> str:
        sys.stdout.flush()
        try:
            return ask(f"Perform task: TASK: {task} (N)o/(y)es/(c)ontinue: ") or "n"
        except EOFError:
            return "n"

    return prompt


def write_retry_file(path: Path, result: RunResult) -> None:
    """Write the failed and unreachable hosts of ``result`` to ``path``, one per line.

    ``--limit @PATH`` reads it back. When every host succeeded the file is removed, so
    an old list never retargets a later run.
    """
    failed = dict.fromkeys(
        h
        for h in [*result.failed_hosts, *result.unreachable_hosts]
        if not h.startswith(_RELEASE_PREFIX)
    )
    if failed:
        write_atomic(path, "".join(f"{h}\n" for h in failed))
    else:
        path.unlink(missing_ok=True)
