"""Ansible host patterns (minimal: names, groups, ``:``/``,`` union, ``&``, ``!``, globs)."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdlib.inventory.model import Inventory


def select(inv: Inventory, pattern: str) -> list[str]:
    """Host names matching ``pattern`` in inventory order."""
    terms = [t for t in pattern.replace(",", ":").split(":") if t]
    chosen: list[str] = []
    for term in terms:
        if term.startswith("!"):
            drop = set(_one(inv, term[1:]))
            chosen = [h for h in chosen if h not in drop]
        elif term.startswith("&"):
            keep = set(_one(inv, term[1:]))
            chosen = [h for h in chosen if h in keep]
        else:
            chosen += [h for h in _one(inv, term) if h not in chosen]
    order = {n: i for i, n in enumerate(inv.hosts)}
    return sorted(chosen, key=order.__getitem__)


def _one(inv: Inventory, term: str) -> list[str]:
    if term in ("all", "*"):
        return list(inv.hosts)
    if term in inv.groups:
        return inv.group_hosts(term)
    if term in inv.hosts:
        return [term]
    out: list[str] = []
    for g in inv.groups:
        if fnmatch.fnmatchcase(g, term):
            out += inv.group_hosts(g)
    out += [h for h in inv.hosts if fnmatch.fnmatchcase(h, term)]
    return out
