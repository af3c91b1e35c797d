"""Pure changes to a flag document: each returns a new, validated document.

Nothing here touches a file or a host. A change that would leave the document
invalid raises before anything is written; a change that changes nothing
returns the same document and no :class:`FlagChange`, so tasks stay idempotent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cdlib.flags.document import FlagDocument
from cdlib.flags.errors import FlagChangeError
from cdlib.flags.validate import check_document

__all__ = [
    "FlagChange",
    "kill_switch",
    "rollout_weights",
    "set_default_variant",
    "set_rollout",
    "set_state",
]

_FIELDS = ("state", "defaultVariant", "targeting")


@dataclass(frozen=True)
class FlagChange:
    """One field of one flag changed from ``old`` to ``new`` (None: absent)."""

    flag: str
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.flag}.{self.field}: {_short(self.old)} -> {_short(self.new)}"


def set_state(doc: FlagDocument, key: str, state: str) -> tuple[FlagDocument, list[FlagChange]]:
    """Set a flag's ``state`` to ENABLED or DISABLED."""
    state = state.upper()
    if state not in ("ENABLED", "DISABLED"):
        raise FlagChangeError(f"flag {key!r}: state must be ENABLED or DISABLED, got {state!r}")

    def change(flag: dict[str, Any]) -> None:
        flag["state"] = state

    return _apply(doc, key, change)


def set_default_variant(
    doc: FlagDocument, key: str, variant: str | None
) -> tuple[FlagDocument, list[FlagChange]]:
    """Set a flag's ``defaultVariant`` (None: the code default)."""

    def change(flag: dict[str, Any]) -> None:
        if variant is not None:
            _require_variant(key, flag, variant)
        flag["defaultVariant"] = variant

    return _apply(doc, key, change)


def set_rollout(
    doc: FlagDocument, key: str, weights: Mapping[str, int]
) -> tuple[FlagDocument, list[FlagChange]]:
    """Set the weights of a flag's ``fractional`` rule (created if it has no targeting).

    The rule's bucketing expression is kept, so users stay in their bucket while the
    rollout grows; a new rule buckets by flag key and targeting key, flagd's shorthand.
    """
    if not weights:
        raise FlagChangeError(f"flag {key!r}: a rollout needs at least one variant weight")
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise FlagChangeError(
                f"flag {key!r}: weight of {name!r} must be a whole number >= 0, got {weight!r}"
            )
    if sum(weights.values()) <= 0:
        raise FlagChangeError(f"flag {key!r}: rollout weights add up to 0")
    buckets = [[name, weight] for name, weight in weights.items()]

    def change(flag: dict[str, Any]) -> None:
        for name in weights:
            _require_variant(key, flag, name)
        targeting = flag.get("targeting")
        if not targeting:
            flag["targeting"] = {"fractional": buckets}
            return
        found = _fractional_nodes(targeting)
        if len(found) != 1:
            what = "no fractional rule" if not found else f"{len(found)} fractional rules"
            raise FlagChangeError(
                f"flag {key!r}: its targeting has {what}; cdlib only ramps a flag with "
                "exactly one (edit the targeting by hand)"
            )
        node = found[0]
        args = node["fractional"]
        keep = args[:1] if args and not isinstance(args[0], list) else []
        node["fractional"] = [*keep, *buckets]

    return _apply(doc, key, change)


def rollout_weights(
    doc: FlagDocument,
    key: str,
    percent: int,
    variant: str | None = None,
    baseline: str | None = None,
) -> dict[str, int]:
    """Weights that send ``percent`` % to ``variant`` and the rest to ``baseline``.

    For a boolean flag the variants default to the one whose value is true and the
    one whose value is false; otherwise to the rule's two buckets or, failing that,
    must be named.
    """
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise FlagChangeError(
            f"flag {key!r}: percent must be a whole number 0..100, got {percent!r}"
        )
    flag = doc.flag(key)
    variants = flag.get("variants") if isinstance(flag.get("variants"), dict) else {}
    assert isinstance(variants, dict)
    existing = _fractional_nodes(flag.get("targeting"))
    names = []
    if len(existing) == 1:
        names = [b[0] for b in existing[0]["fractional"] if isinstance(b, list) and b]
    if variant is None or baseline is None:
        trues = [n for n, v in variants.items() if v is True]
        falses = [n for n, v in variants.items() if v is False]
        if len(trues) == 1 and len(falses) == 1:
            variant, baseline = variant or trues[0], baseline or falses[0]
        elif len(names) == 2:
            variant, baseline = variant or names[0], baseline or names[1]
        else:
            raise FlagChangeError(
                f"flag {key!r}: name the variant to ramp and the baseline variant"
            )
    if variant == baseline:
        raise FlagChangeError(f"flag {key!r}: variant and baseline are both {variant!r}")
    return {variant: percent, baseline: 100 - percent}


def kill_switch(
    doc: FlagDocument, key: str, variant: str | None = None
) -> tuple[FlagDocument, list[FlagChange]]:
    """Serve ``variant`` to everyone now: set it as default and drop the targeting.

    The old targeting goes into the returned change (and so into the audit log),
    from where it can be restored. For a boolean flag the variant defaults to the
    one whose value is false.
    """

    def change(flag: dict[str, Any]) -> None:
        chosen = variant
        if chosen is None:
            variants = flag.get("variants") or {}
            falses = [n for n, v in variants.items() if v is False]
            if len(falses) != 1:
                raise FlagChangeError(
                    f"flag {key!r}: not a boolean flag; name the variant the kill switch serves"
                )
            chosen = falses[0]
        _require_variant(key, flag, chosen)
        flag["defaultVariant"] = chosen
        flag.pop("targeting", None)
        flag["state"] = "ENABLED"

    return _apply(doc, key, change)


# -- internals ----------------------------------------------------------------
def _apply(
    doc: FlagDocument, key: str, change: Callable[[dict[str, Any]], None]
) -> tuple[FlagDocument, list[FlagChange]]:
    doc.flag(key)  # raises UnknownFlagError with the source named
    data = doc.copy_data()
    flag = data["flags"][key]
    before = copy.deepcopy({f: flag.get(f) for f in _FIELDS})
    change(flag)
    changes = [
        FlagChange(key, f, before[f], flag.get(f)) for f in _FIELDS if before[f] != flag.get(f)
    ]
    if not changes:
        return doc, []
    new = doc.with_data(data)
    check_document(new)
    return new, changes


def _require_variant(key: str, flag: dict[str, Any], name: str) -> None:
    variants = flag.get("variants")
    if not isinstance(variants, dict) or name not in variants:
        known = ", ".join(map(str, variants)) if isinstance(variants, dict) else "none"
        raise FlagChangeError(f"flag {key!r}: no variant {name!r} (variants: {known})")


def _fractional_nodes(node: object) -> list[dict[str, Any]]:
    """Every JsonLogic object in ``node`` whose operator is ``fractional``."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "fractional" in node:
            found.append(node)
        for value in node.values():
            found.extend(_fractional_nodes(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_fractional_nodes(item))
    return found


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "(none)"
    return text if len(text) <= 120 else text[:117] + "..."
