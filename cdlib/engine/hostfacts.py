"""Host facts in a run: which tasks need them, and rendering those once they are read.

Tasks are rendered for every host before any host is touched, but the host facts
(``facts.*``, ``ansible_*``) can only be read from the host. So a task whose ``name``,
``when`` or templated options use a fact name (or every task of a play with
``gather_facts=True``, whose template files may use them) is *deferred*: validation
renders it with stand-in facts (so undefined variables and syntax errors are still
found before anything runs) and keeps that rendering only to know which facts the task
will read. When the play starts on a host, the facts are read in the same batched
command as the first task's facts (no round trip of their own), and the deferred tasks
are rendered again with the real values. Plays that use no fact never read them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cdlib.engine.errors import PlaybookError
from cdlib.engine.factcache import FactCache
from cdlib.engine.task import Plan, Task, strings_in
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.host import FACT_VARIABLES, PLACEHOLDER, HostFactsFact, fact_vars


def uses_facts(task: Task[Plan], templar: Templar) -> bool:
    """Whether a template of ``task`` (name, ``when``, templated options) reads a fact."""
    return any(templar.names(text) & FACT_VARIABLES for text in _templates(task))


def _templates(task: Task[Plan]) -> Iterator[str]:
    if isinstance(task.when, str):
        # ``when`` is an expression, rendered inside {% if %}.
        yield "{% if " + task.when + " %}{% endif %}"
    if task.name:
        yield task.name
    for name in task.templated_options():
        yield from strings_in(getattr(task, name))


def with_facts(
    hv: Mapping[str, Any], facts: Mapping[str, Any], keep: Mapping[str, Any]
) -> dict[str, Any]:
    """``hv`` with ``facts`` added: facts win over inventory vars, not over ``keep`` (play
    and extra vars), as in Ansible's precedence."""
    return {**hv, **{k: v for k, v in facts.items() if k not in keep}}


def placeholder_vars(hv: Mapping[str, Any], keep: Mapping[str, Any]) -> dict[str, Any]:
    """``hv`` with stand-in facts, for validating deferred tasks before any host is read."""
    return with_facts(hv, fact_vars(PLACEHOLDER), keep)


def is_real_error(exc: PlaybookError | Exception) -> bool:
    """Whether an error met rendering with stand-in facts is an error with any facts.

    A variable missing from the host's vars or a syntax error is; anything else may come
    from the stand-in values (a comparison, a filter on an empty string) and waits for
    the real facts.
    """
    text = str(exc)
    return "undefined variable" in text or "syntax error" in text


def read_facts(
    cache: FactCache, upcoming: list[Task[Plan] | None], extra: Sequence[Fact[object]] = ()
) -> dict[str, Any]:
    """Read the host facts together with the facts ``upcoming`` tasks declared and
    ``extra`` facts (one batch)."""
    cache.set_upcoming([*extra, *(f for t in upcoming if t is not None for f in t.facts())])
    return fact_vars(cache.get(HostFactsFact()))
