"""Flag management: read a store, change a flag, validate, write, audit.

These are the operations tasks, the CLI and release strategies call. A change is
computed and validated for every store before any store is written, so a bad
change leaves every store as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cdlib.flags.audit import AuditLog
from cdlib.flags.document import FlagDocument
from cdlib.flags.mutate import (
    FlagChange,
    kill_switch,
    rollout_weights,
    set_default_variant,
    set_rollout,
    set_state,
)
from cdlib.flags.stores import FlagStore

__all__ = ["ChangeResult", "change_flag", "kill", "ramp", "set_flag"]

Mutation = Callable[[FlagDocument], tuple[FlagDocument, list[FlagChange]]]


@dataclass(frozen=True)
class ChangeResult:
    """What a flag operation did on each store."""

    action: str
    flag: str
    changes: dict[str, list[FlagChange]] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        """True when at least one store's document changed (or would, on a dry run)."""
        return any(self.changes.values())


def change_flag(
    stores: FlagStore | Sequence[FlagStore],
    flag: str,
    mutation: Mutation,
    *,
    action: str,
    audit: AuditLog | None = None,
    who: str | None = None,
    dry_run: bool = False,
) -> ChangeResult:
    """Apply ``mutation`` to the document in each store; write only what changes."""
    targets = [stores] if isinstance(stores, FlagStore) else list(stores)
    planned: list[tuple[FlagStore, FlagDocument, list[FlagChange]]] = []
    for store in targets:  # plan (and validate) everything first
        new, changes = mutation(store.read())
        planned.append((store, new, changes))
    result = ChangeResult(action, flag, {s.name: c for s, _, c in planned}, dry_run)
    if dry_run:
        return result
    for store, new, changes in planned:
        if not changes:
            continue
        store.write(new)
        if audit is not None:
            audit.record(changes, target=store.name, action=action, who=who)
    return result


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
) -> ChangeResult:
    """Send ``percent`` % of users to ``variant`` through the flag's fractional rule.

    This is the call a canary step makes to ramp a flag instead of traffic weights
    (10 -> 50 -> 100). Users keep their bucket between steps: the rule's bucketing
    expression is kept and only the weights change.
    """

    def mutation(doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        weights = rollout_weights(doc, flag, percent, variant, baseline)
        return set_rollout(doc, flag, weights)

    return change_flag(
        stores, flag, mutation, action=f"ramp {percent}%", audit=audit, who=who, dry_run=dry_run
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
    """Flip the kill switch: serve ``variant`` (for booleans, false) to everyone."""

    def mutation(doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        return kill_switch(doc, flag, variant)

    return change_flag(stores, flag, mutation, action="kill", audit=audit, who=who, dry_run=dry_run)
