"""Flag management: read a store, change a flag, validate, write, audit.

These are the operations tasks, the CLI and release strategies call. A change is
computed and validated for every store before any store is written, so a bad
change leaves every store as it was.

A normal change is all-or-nothing as far as it can be: a store that cannot be read
stops it before anything is written. A kill switch and a rollback (a ramp to 0 %)
are the other way round, since they are what an operator reaches for in an
incident: they write every store they can reach and then raise
:class:`PartialChangeError` naming the stores they could not read or write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cdlib.connections.base import TransportError
from cdlib.flags.audit import AuditLog
from cdlib.flags.document import FlagDocument
from cdlib.flags.errors import FlagsError
from cdlib.flags.mutate import (
    FlagChange,
    kill_switch,
    rollout_weights,
    set_default_variant,
    set_rollout,
    set_state,
)
from cdlib.flags.stores import FlagStore

__all__ = ["ChangeResult", "PartialChangeError", "change_flag", "kill", "ramp", "set_flag"]

Mutation = Callable[[FlagDocument], tuple[FlagDocument, list[FlagChange]]]


@dataclass(frozen=True)
class ChangeResult:
    """What a flag operation did on each store."""

    action: str
    flag: str
    changes: dict[str, list[FlagChange]] = field(default_factory=dict)
    dry_run: bool = False
    #: Stores that could not be read or written, with the reason (best-effort changes).
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when at least one store's document changed (or would, on a dry run)."""
        return any(self.changes.values())


class PartialChangeError(FlagsError):
    """A kill or rollback reached only some stores: ``result`` says which got it.

    Every store that could be reached was written; ``result.failed`` names the others
    with the reason.
    """

    def __init__(self, result: ChangeResult) -> None:
        self.result = result
        done = [name for name in result.changes if name not in result.failed]
        lines = [f"  {name}: {why}" for name, why in result.failed.items()]
        super().__init__(
            f"{result.action} of flag {result.flag!r} reached {len(done)} of "
            f"{len(done) + len(result.failed)} store(s); not done on:\n" + "\n".join(lines)
        )


#: What a store raises when it cannot be reached, read or written.
_STORE_ERRORS = (FlagsError, TransportError, OSError)


def change_flag(
    stores: FlagStore | Sequence[FlagStore],
    flag: str,
    mutation: Mutation,
    *,
    action: str,
    audit: AuditLog | None = None,
    who: str | None = None,
    dry_run: bool = False,
    best_effort: bool = False,
) -> ChangeResult:
    """Apply ``mutation`` to the document in each store; write only what changes.

    Every store is read and the change validated on each before any is written; a
    change that does not fit the flag writes nothing anywhere. With ``best_effort``
    a store that cannot be read or written is skipped, every other store is still
    written, and :class:`PartialChangeError` names the skipped ones at the end.
    Without it, an unreadable store stops the change before any write, and a failed
    write stops it there (the error names the stores already written).
    """
    targets = [stores] if isinstance(stores, FlagStore) else list(stores)
    planned: list[tuple[FlagStore, FlagDocument, list[FlagChange]]] = []
    failed: dict[str, str] = {}
    for store in targets:  # plan (and validate) everything first
        try:
            doc = store.read()
        except _STORE_ERRORS as exc:
            if not best_effort:
                raise
            failed[store.name] = _reason(store, exc)
            continue
        new, changes = mutation(doc)
        planned.append((store, new, changes))
    result = ChangeResult(action, flag, {s.name: c for s, _, c in planned}, dry_run, failed)
    if dry_run:
        return _finish(result)
    written: list[str] = []
    for store, new, changes in planned:
        if not changes:
            continue
        try:
            store.write(new)
        except _STORE_ERRORS as exc:
            if not best_effort:
                if written:
                    raise FlagsError(
                        f"{exc}; already written: {', '.join(written)}; not written: "
                        + ", ".join(s.name for s, _, c in planned if c and s.name not in written)
                    ) from exc
                raise
            failed[store.name] = _reason(store, exc)
            continue
        written.append(store.name)
        if audit is not None:
            audit.record(changes, target=store.name, action=action, who=who)
    return _finish(result)


def _finish(result: ChangeResult) -> ChangeResult:
    if result.failed:
        raise PartialChangeError(result)
    return result


def _reason(store: FlagStore, exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # Store errors usually start with the store's name; the report names it already.
    return text.removeprefix(f"{store.name}: ")


def set_flag(
    stores: FlagStore | Sequence[FlagStore],
    flag: str,
    *,
    state: str | None = None,
    default_variant: str | None = None,
    audit: AuditLog | None = None,
    who: str | None = None,
    dry_run: bool = False,
) -> ChangeResult:
    """Set a flag's state and/or default variant."""

    def mutation(doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        changes: list[FlagChange] = []
        if state is not None:
            doc, c = set_state(doc, flag, state)
            changes += c
        if default_variant is not None:
            doc, c = set_default_variant(doc, flag, default_variant)
            changes += c
        return doc, changes

    return change_flag(stores, flag, mutation, action="set", audit=audit, who=who, dry_run=dry_run)


def ramp(
    stores: FlagStore | Sequence[FlagStore],
    flag: str,
    percent: int,
    *,
    variant: str | None = None,
    baseline: str | None = None,
    audit: AuditLog | None = None,
    who: str | None = None,
    dry_run: bool = False,
    best_effort: bool | None = None,
) -> ChangeResult:
    """Send ``percent`` % of users to ``variant`` through the flag's fractional rule.

    This is the call a canary step makes to ramp a flag instead of traffic weights
    (10 -> 50 -> 100). Users keep their bucket between steps: the rule's bucketing
    expression is kept and only the weights change.

    A ramp to 0 % is a rollback: by default (``best_effort=None``) it writes every
    store it can reach and raises :class:`PartialChangeError` for the others (see
    :func:`change_flag`); any other ramp is all-or-nothing.
    """

    def mutation(doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        weights = rollout_weights(doc, flag, percent, variant, baseline)
        return set_rollout(doc, flag, weights)

    return change_flag(
        stores,
        flag,
        mutation,
        action=f"ramp {percent}%",
        audit=audit,
        who=who,
        dry_run=dry_run,
        best_effort=percent == 0 if best_effort is None else best_effort,
    )


def kill(
    stores: FlagStore | Sequence[FlagStore],
    flag: str,
    *,
    variant: str | None = None,
    audit: AuditLog | None = None,
    who: str | None = None,
    dry_run: bool = False,
) -> ChangeResult:
    """Flip the kill switch: serve ``variant`` (for booleans, false) to everyone.

    Best effort: every store that can be reached gets the kill, then
    :class:`PartialChangeError` names the stores that could not be (see
    :func:`change_flag`). A variant the flag does not have writes nothing.
    """

    def mutation(doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        return kill_switch(doc, flag, variant)

    return change_flag(
        stores,
        flag,
        mutation,
        action="kill",
        audit=audit,
        who=who,
        dry_run=dry_run,
        best_effort=True,
    )
