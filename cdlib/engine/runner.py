"""The runner: validate every item of a playbook for every host, then run them in order.

This module is the facade of the engine; the work is done by
:mod:`~cdlib.engine.variables` (precedence), :mod:`~cdlib.engine.prepare` (validation
and rendering), :mod:`~cdlib.engine.session` (a run in progress, the
:class:`~cdlib.engine.contract.RunContext`), :mod:`~cdlib.engine.schedule` (hosts in
parallel, batches, handlers) and :mod:`~cdlib.engine.execute` (one task on one host).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdlib.connections.base import Connection, ConnectionSettingsError
from cdlib.connections.factory import ConnectionOptions, connection_for
from cdlib.engine.contract import Runnable
from cdlib.engine.errors import PlaybookError
from cdlib.engine.events import Events, EventSink
from cdlib.engine.play import Play, flatten
from cdlib.engine.playbook import Playbook, load_playbook
from cdlib.engine.prepare import MAX_REPORTED_ERRORS, Preparer, plays_path, raise_errors
from cdlib.engine.results import RunResult
from cdlib.engine.secrets import Redactor
from cdlib.engine.selection import Selection, StepGate, StepPrompt
from cdlib.engine.session import Session, Shared
from cdlib.engine.templating import Templar
from cdlib.engine.variables import host_vars, with_extra_vars
from cdlib.inventory.model import Host, Inventory, InventoryError

if TYPE_CHECKING:
    from cdlib.vault.keyring import Keyring

__all__ = ["MAX_REPORTED_ERRORS", "Outline", "host_vars", "outline", "run"]


def run(
    playbook: str | Path | Runnable | Playbook | Sequence[Runnable],
    inventory: Inventory | str | Path | Sequence[str | Path] | None = None,
    *,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    forks: int = 10,
    sinks: Sequence[EventSink] = (),
    connection_options: ConnectionOptions | None = None,
    connection_factory: Callable[[Host], Connection] | None = None,
    vault: Keyring | None = None,
    metadata: Mapping[str, str] | None = None,
    tags: Sequence[str] = ("all",),
    skip_tags: Sequence[str] = (),
    start_at_task: str | None = None,
    step: StepPrompt | None = None,
    force_handlers: bool = False,
) -> RunResult:
    """Run a playbook (a path, a :class:`Play`, a strategy or a list of those); return results.

    Every item is validated for every host before any host is touched; bad input
    raises :class:`PlaybookError` / :class:`PlaybookErrors` and changes nothing.
    ``check`` predicts changes without making them; ``diff`` adds content diffs.
    ``sinks`` receive events as the run goes (console, JSON Lines, callbacks).
    The ``inventory`` object given is not changed: extra vars go into a copy.
    ``vault``: passwords for vault-encrypted inventory files and values.
    ``metadata`` are free-form labels of the run (``cdlib run --meta``); a release
    records them.
    ``tags`` / ``skip_tags`` select tasks by tag (Ansible's rules, with ``always`` and
    ``never``); ``start_at_task`` skips every task before the first one with that name
    (or shell pattern); ``step`` is asked ``(play, task)`` before each task and answers
    ``y`` (run), ``n`` (skip) or ``c`` (run this and every later task without asking).
    ``force_handlers`` runs the handlers notified on a host even when a later task
    failed there (as Ansible's ``--force-handlers``).
    """
    book = _as_playbook(playbook)
    extra = dict(extra_vars or {})
    inv = _as_inventory(inventory, extra, book.path.parent, vault)
    redact = Redactor()
    redact.collect(extra)
    for h in inv.hosts.values():
        redact.collect(h.vars)
    for item in book.plays:
        if isinstance(item, Play):
            redact.collect(dict(item.vars))
    try:
        selection = Selection(tuple(tags), tuple(skip_tags), start_at_task)
        scope = _validated(book, inv, limit, extra, selection, metadata)
        forks = max(1, forks)
        shared = Shared(
            pool=ThreadPoolExecutor(max_workers=forks, thread_name_prefix="cdlib-host"),
            factory=connection_factory or (lambda h: connection_for(h, connection_options)),
            events=Events(list(sinks), redact),
            redact=redact,
            owns_connections=connection_factory is None,
            step=StepGate(step) if step is not None else None,
            force_handlers=force_handlers,
        )
        if shared.owns_connections:
            _open_settings(shared, scope)
        session = Session(shared, scope, check=check, diff=diff, forks=forks)
        try:
            session.run_items(book.plays)
        finally:
            shared.close(session.result)
        return session.result
    except BaseException as exc:
        # Errors leave the run (and reach the CLI's ERROR line) with every secret masked.
        redact.exception(exc)
        raise


@dataclass(frozen=True)
class Outline:
    """One item of a playbook as a run would take it (``--list-tasks``, ``--list-hosts``).

    ``tasks`` are (name, tags) of the tasks selected by tags and ``--start-at-task``;
    items that are not plays (a release strategy) list no hosts and no tasks.
    """

    label: str
    pattern: str
    tags: tuple[str, ...]
    hosts: list[str]
    tasks: list[tuple[str, tuple[str, ...]]]


def outline(
    playbook: str | Path | Runnable | Playbook | Sequence[Runnable],
    inventory: Inventory | str | Path | Sequence[str | Path] | None = None,
    *,
    limit: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    tags: Sequence[str] = ("all",),
    skip_tags: Sequence[str] = (),
    start_at_task: str | None = None,
    vault: Keyring | None = None,
) -> list[Outline]:
    """Validate a playbook as :func:`run` does and say what it would run; touch no host.

    Raises the same errors as :func:`run` on bad input.
    """
    book = _as_playbook(playbook)
    extra = dict(extra_vars or {})
    inv = _as_inventory(inventory, extra, book.path.parent, vault)
    scope = _validated(
        book, inv, limit, extra, Selection(tuple(tags), tuple(skip_tags), start_at_task)
    )
    out = []
    for item in book.plays:
        p = scope.prepared.get(id(item)) if isinstance(item, Play) else None
        if p is None:
            out.append(Outline(item.label, "", (), [], []))
            continue
        out.append(
            Outline(
                p.play.name,
                p.play.hosts,
                tuple(p.play.tags),
                [h.name for h in p.hosts],
                [(t.label, tuple(t.tags)) for t in p.selected],
            )
        )
    return out


def _open_settings(shared: Shared, scope: Preparer) -> None:
    """Make the connection of every host the plays select (and the deploy plays of
    releases may reach), connecting none: wrong connection settings are bad input,
    reported together before any host is touched."""
    errors: list[PlaybookError] = []
    hosts = [h for p in scope.prepared.values() for h in p.hosts]
    for h in [*hosts, *scope.later_hosts]:
        if h.name in shared.conns:
            continue
        try:
            shared.conns[h.name] = shared.factory(h)
        except (ConnectionSettingsError, InventoryError) as exc:
            errors.append(PlaybookError(str(exc)))
    raise_errors(errors)


def _validated(
    book: Playbook,
    inv: Inventory,
    limit: str | None,
    extra: Mapping[str, Any],
    selection: Selection,
    metadata: Mapping[str, str] | None = None,
) -> Preparer:
    scope = Preparer(
        inv,
        limit,
        extra,
        Templar(book.search_path),
        book.path.parent,
        selection=selection,
        metadata=metadata,
    )
    raise_errors([*book.errors, *(e for item in book.plays for e in item.validate(scope))])
    if not selection.started:
        raise PlaybookError(f"--start-at-task {selection.start_at!r}: no task has that name")
    return scope


def _as_playbook(pb: str | Path | Runnable | Playbook | Sequence[Runnable]) -> Playbook:
    if isinstance(pb, Playbook):
        return pb
    if isinstance(pb, str | Path):
        return load_playbook(pb, defer_errors=True)
    items: list[Runnable] = flatten([pb])
    return Playbook(plays_path(items), items)


def _as_inventory(
    inv: Inventory | str | Path | Sequence[str | Path] | None,
    extra: Mapping[str, Any],
    playbook_dir: Path | None = None,
    vault: Keyring | None = None,
) -> Inventory:
    if isinstance(inv, Inventory):
        return with_extra_vars(inv, extra)
    if inv is None:
        return Inventory([Host("localhost", {"ansible_connection": "local", **extra})])
    from cdlib.inventory import load_inventory

    sources = [inv] if isinstance(inv, str | Path) else list(inv)
    # group_vars/ and host_vars/ beside the playbook apply too, as in Ansible.
    return load_inventory(sources, extra, playbook_dir=playbook_dir, vault=vault)
