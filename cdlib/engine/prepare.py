"""Preparation: validate plays and render every task for every host, touching none.

Every item of a playbook is validated before any runs; the errors found (up to
:data:`MAX_REPORTED_ERRORS`) are raised together as one :class:`PlaybookError` or a
:class:`PlaybookErrors` holding several.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdlib.engine.contract import Runnable
from cdlib.engine.errors import PlaybookError, PlaybookErrors, suggest
from cdlib.engine.hostfacts import is_real_error, placeholder_vars, uses_facts
from cdlib.engine.play import Play
from cdlib.engine.selection import Selection
from cdlib.engine.task import Plan, Task
from cdlib.engine.templating import Templar, TemplateError
from cdlib.engine.variables import host_vars
from cdlib.inventory.model import Host, Inventory

#: Stop collecting validation errors after this many; the first ones matter most.
MAX_REPORTED_ERRORS = 50


@dataclass
class Prepared:
    """A play ready to run: its hosts and every task rendered for every host."""

    play: Play
    hosts: list[Host]
    #: The play's tasks chosen by tags and ``--start-at-task``, in order.
    selected: list[Task[Plan]]
    tasks: dict[str, list[Task[Plan] | None]]  # per ``selected``; None: ``when`` is false
    handlers: dict[str, dict[str, Task[Plan] | None]]
    vars: dict[str, dict[str, Any]]
    #: Read the host facts when the play starts on a host (:mod:`~cdlib.engine.hostfacts`).
    gather: bool = False
    #: Indexes in ``selected`` (and handler names) rendered again once facts are read.
    deferred: frozenset[int] = frozenset()
    deferred_handlers: frozenset[str] = frozenset()


class Preparer:
    """Renders plays against one inventory, limit and set of extra vars.

    It is the :class:`~cdlib.engine.contract.Scope` items are validated with; the
    plays it prepared are kept (by identity) for the run.
    """

    def __init__(
        self,
        inventory: Inventory,
        limit: str | None,
        extra_vars: Mapping[str, object],
        templar: Templar,
        playbook_dir: Path,
        metadata: Mapping[str, str] | None = None,
        selection: Selection | None = None,
    ) -> None:
        self._inventory = inventory
        self.selection = selection or Selection()
        self._extra: dict[str, Any] = dict(extra_vars)
        self._limit = limit
        self._metadata = dict(metadata or {})
        self.templar = templar
        self.playbook_dir = playbook_dir
        self.limited: set[str] | None = None
        if limit:
            self.limited = {h.name for h in inventory.select("all", limit)}
            if not self.limited:
                raise PlaybookError(f"--limit {limit!r} matches no host in the inventory")
        self.prepared: dict[int, Prepared] = {}
        #: Hosts of plays an item will run later (a release's deploy plays, checked
        #: with :meth:`check_plays`): their connection settings are checked up front too.
        self.later_hosts: list[Host] = []
        self.reported = 0

    @property
    def inventory(self) -> Inventory:
        """The inventory plays are rendered against."""
        return self._inventory

    @property
    def extra_vars(self) -> Mapping[str, object]:
        """The extra vars plays are rendered with."""
        return self._extra

    @property
    def limit(self) -> str | None:
        """The ``--limit`` pattern plays are restricted to."""
        return self._limit

    @property
    def metadata(self) -> Mapping[str, str]:
        """The run's free-form labels (``--meta``)."""
        return self._metadata

    def prepare(self, play: Play) -> list[PlaybookError]:
        """Validate and render ``play``; keep the rendering; return the errors."""
        errors: list[PlaybookError] = []
        p = self.render(play, errors)
        self.prepared[id(play)] = p
        self.reported += len(errors)
        return errors

    def check_plays(
        self, plays: Sequence[Play], *, limit: str | None, extra_vars: Mapping[str, object]
    ) -> list[PlaybookError]:
        """Errors ``plays`` would raise when run with ``limit`` and ``extra_vars``."""
        where = plays_path(plays)
        try:
            done = prepare_plays(
                plays,
                self._inventory,
                limit,
                {**self._extra, **extra_vars},
                Templar(search_path(where)),
                where.parent,
                self.selection.nested(),
            )
        except PlaybookError as exc:
            return [exc]
        except PlaybookErrors as exc:
            return list(exc.errors)
        self.later_hosts += [h for p in done for h in p.hosts]
        return []

    def render(self, play: Play, errors: list[PlaybookError]) -> Prepared:
        """Render ``play`` for its hosts, adding problems to ``errors``."""
        errors += play.validate()
        inv = self._inventory
        matched = inv.select(play.hosts)
        if not matched and not play.allow_empty:
            errors.append(
                PlaybookError(
                    f"play {play.name!r}: host pattern {play.hosts!r} matches no host in the "
                    f"inventory{suggest(play.hosts, inv.groups.keys() | inv.hosts.keys())} "
                    "(Play(..., allow_empty=True) lets a play run on no host)",
                    origin=play.origin,
                )
            )
        hosts = [h for h in matched if self.limited is None or h.name in self.limited]
        selected = [t for t in play.tasks if self.selection.keep(t.label, (*play.tags, *t.tags))]
        every = play.gather_facts
        later = frozenset(i for i, t in enumerate(selected) if every or uses_facts(t, self.templar))
        later_hd = frozenset(
            hd.name for hd in play.handlers if every or uses_facts(hd.task, self.templar)
        )
        gather = every or bool(later) or bool(later_hd)
        p = Prepared(play, hosts, selected, {}, {}, {}, gather, later, later_hd)
        keep = {**play.vars, **self._extra}
        for h in hosts:
            hv = host_vars(h, play, inv, self._extra, self.playbook_dir)
            p.vars[h.name] = hv
            # Deferred tasks are checked with stand-in facts; the real ones come at run time.
            alt = placeholder_vars(hv, keep) if gather else hv
            p.tasks[h.name] = [
                prepare_task(t, alt, self.templar, h.name, errors, lenient=True)
                if i in later
                else prepare_task(t, hv, self.templar, h.name, errors)
                for i, t in enumerate(selected)
            ]
            p.handlers[h.name] = {
                hd.name: prepare_task(
                    hd.task,
                    alt if hd.name in later_hd else hv,
                    self.templar,
                    h.name,
                    errors,
                    lenient=hd.name in later_hd,
                )
                for hd in play.handlers
            }
            if self.reported + len(errors) >= MAX_REPORTED_ERRORS:
                break
        return p


def prepare_plays(
    plays: Sequence[Play],
    inv: Inventory,
    limit: str | None,
    extra: Mapping[str, object],
    templar: Templar,
    playbook_dir: Path,
    selection: Selection | None = None,
) -> list[Prepared]:
    """Validate every play and render its tasks and handlers for every selected host.

    Nothing touches a host here. All problems found (up to a limit) are raised together:
    one :class:`PlaybookError`, or :class:`PlaybookErrors` holding several.
    """
    prep = Preparer(inv, limit, extra, templar, playbook_dir, selection=selection)
    errors: list[PlaybookError] = []
    out = [prep.render(play, errors) for play in plays]
    raise_errors(errors)
    return out


def plays_path(plays: Sequence[Runnable]) -> Path:
    """The file items stand for: where the first was defined (else ``./playbook.py``)."""
    origin_file = Path(plays[0].origin.file) if plays else Path.cwd() / "playbook.py"
    return origin_file if origin_file.is_absolute() else Path.cwd() / origin_file


def search_path(playbook: Path) -> list[Path]:
    """Template search path of a playbook: its directory and its ``templates/``."""
    d = playbook.parent
    return [d, d / "templates"]


def raise_errors(errors: list[PlaybookError]) -> None:
    """Raise ``errors`` (if any): the one alone, or several together without repeats."""
    if errors:
        found = dedupe(errors)
        raise found[0] if len(found) == 1 else PlaybookErrors(found)


#: At most this many host names in one grouped error; the rest are counted.
MAX_HOSTS_NAMED = 5


def dedupe(errors: list[PlaybookError]) -> list[PlaybookError]:
    """``errors`` without repeats, in order: the same problem of the same task on several
    hosts is one error naming the hosts (``host h1, h2, h3``)."""
    groups: dict[tuple[object, ...], list[PlaybookError]] = {}
    for e in errors:
        key = (e.origin, e.task, e.reason) if e.host is not None else (str(e),)
        groups.setdefault(key, []).append(e)
    out = []
    for same in groups.values():
        hosts = list(dict.fromkeys(e.host for e in same if e.host is not None))
        if len(hosts) < 2:
            out.append(same[0])
            continue
        named = ", ".join(hosts[:MAX_HOSTS_NAMED])
        if len(hosts) > MAX_HOSTS_NAMED:
            named += f" and {len(hosts) - MAX_HOSTS_NAMED} more"
        first = same[0]
        out.append(PlaybookError(first.reason, origin=first.origin, task=first.task, host=named))
    return out


def prepare_task(
    task: Task[Plan],
    hv: dict[str, Any],
    templar: Templar,
    host: str,
    errors: list[PlaybookError],
    *,
    lenient: bool = False,
) -> Task[Plan] | None:
    """``task`` rendered for a host (None when ``when`` is false), errors added to
    ``errors``; ``lenient`` (stand-in facts) keeps only errors that the real facts
    cannot cure."""
    if lenient:
        mine: list[PlaybookError] = []
        out = prepare_task(task, hv, templar, host, mine)
        errors.extend(e for e in mine if is_real_error(e))
        if out is None:
            # Kept only for the facts it will read (prefetched with the host facts): the
            # task is rendered again, ``when`` included, once the real facts are known.
            with contextlib.suppress(Exception):
                out = task.prepare(hv, templar)
        return out
    try:
        if not task.should_run(hv, templar):
            return None
        return task.prepare(hv, templar)
    except TemplateError as exc:
        errors.append(PlaybookError(str(exc), origin=task.origin, task=task.label, host=host))
    except PlaybookError as exc:
        errors.append(
            PlaybookError(exc.reason, origin=exc.origin or task.origin, task=task.label, host=host)
        )
    return None
