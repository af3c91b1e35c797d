"""Load inventories (minimal YAML form: ``all:`` with hosts, vars and children)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cdlib.inventory.model import Group, Host, Inventory, InventoryError


def load_inventory(
    sources: Sequence[str | Path], extra_vars: Mapping[str, Any] | None = None
) -> Inventory:
    """Read inventory ``sources`` and return the merged :class:`Inventory`.

    A source that is a comma-separated host list (``"a,b,"``) is accepted as in Ansible.
    """
    groups: dict[str, Group] = {"all": Group("all"), "ungrouped": Group("ungrouped")}
    groups["all"].children.append("ungrouped")
    host_vars: dict[str, dict[str, Any]] = {}
    for src in sources:
        s = str(src)
        if "," in s and not Path(s).exists():
            for name in (x.strip() for x in s.split(",")):
                if name:
                    host_vars.setdefault(name, {})
                    groups["ungrouped"].hosts.append(name)
            continue
        path = Path(s)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise InventoryError(f"{path}: inventory file not found") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise InventoryError(f"{where}: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise InventoryError(f"{path}: expected a mapping with 'all:' at the top")
        for gname, body in data.items():
            _group(path, groups, host_vars, str(gname), body or {}, parent=None)
    hosts = []
    for name, hv in host_vars.items():
        memberships = [g for g, grp in groups.items() if name in grp.hosts]
        if not memberships:
            groups["ungrouped"].hosts.append(name)
        merged: dict[str, Any] = {}
        for g in _ancestry(groups, name):
            merged.update(groups[g].vars)
        merged.update(hv)
        merged.update(extra_vars or {})
        hosts.append(Host(name, merged, [g for g in _ancestry(groups, name) if g != "all"]))
    return Inventory(hosts, groups)


def _group(
    path: Path,
    groups: dict[str, Group],
    host_vars: dict[str, dict[str, Any]],
    name: str,
    body: Any,
    parent: str | None,
) -> None:
    if not isinstance(body, dict):
        raise InventoryError(f"{path}: group {name!r} must be a mapping")
    grp = groups.setdefault(name, Group(name))
    if parent is not None and name not in groups[parent].children:
        groups[parent].children.append(name)
    for hname, hv in (body.get("hosts") or {}).items():
        host_vars.setdefault(str(hname), {}).update(hv or {})
        if str(hname) not in grp.hosts:
            grp.hosts.append(str(hname))
    grp.vars.update(body.get("vars") or {})
    for cname, cbody in (body.get("children") or {}).items():
        _group(path, groups, host_vars, str(cname), cbody or {}, parent=name)


def _ancestry(groups: dict[str, Group], host: str) -> list[str]:
    """Groups containing ``host``, shallowest first (all < parents < children)."""
    depth: dict[str, int] = {}

    def walk(g: str, d: int) -> None:
        if depth.get(g, -1) >= d:
            return
        depth[g] = d
        for c in groups[g].children:
            walk(c, d + 1)

    walk("all", 0)
    containing = [g for g in groups if g == "all" or host in groups[g].hosts]
    # add ancestors of direct groups
    result: set[str] = set()
    for g in containing:
        result.add(g)
        for p in groups:
            if _descends(groups, p, g):
                result.add(p)
    return sorted(result, key=lambda g: (depth.get(g, 0), g))


def _descends(groups: dict[str, Group], parent: str, child: str) -> bool:
    stack, seen = list(groups[parent].children), set()
    while stack:
        c = stack.pop()
        if c == child:
            return True
        if c in seen:
            continue
        seen.add(c)
        stack.extend(groups[c].children)
    return False
