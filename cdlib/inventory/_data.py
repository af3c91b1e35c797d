"""The mutable inventory that source parsers fill in, with Ansible's reconcile rules."""

from __future__ import annotations

import re
from typing import Any

from cdlib.inventory.model import Group, InventoryError

#: What Ansible replaces in generated group names: a leading digit, any non-word character.
_UNSAFE_GROUP_CHARS = re.compile(r"^[\d\W]|\W")


def safe_group_name(name: str) -> str:
    """Replace characters that are invalid in a variable name with ``_`` (as Ansible does)."""
    return _UNSAFE_GROUP_CHARS.sub("_", name)


class InventoryData:
    """Groups and hosts as parsed, before variables from files are merged."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {"all": Group("all"), "ungrouped": Group("ungrouped")}
        self.add_child("all", "ungrouped", "built-in")
        #: Host name -> its own inventory vars, in definition order.
        self.hosts: dict[str, dict[str, Any]] = {}
        #: Host name -> groups that list it directly (kept in step with Group.hosts).
        self.direct: dict[str, set[str]] = {}

    def add_group(self, name: str, where: str) -> str:
        """Create ``name`` if new; return it."""
        if not isinstance(name, str) or not name:
            raise InventoryError(f"{where}: invalid empty or non-text group name {name!r}")
        if name not in self.groups:
            self.groups[name] = Group(name)
        return name

    def add_host(
        self, name: str, where: str, group: str | None = None, port: int | None = None
    ) -> str:
        """Add host ``name`` (a port applies only to a new host, as in Ansible)."""
        if not isinstance(name, str) or not name:
            raise InventoryError(f"{where}: invalid empty or non-text host name {name!r}")
        if name not in self.hosts:
            self.hosts[name] = {} if port is None else {"ansible_port": port}
            self.direct[name] = set()
        if group is not None and group not in self.direct[name]:
            self.groups[group].hosts.append(name)
            self.direct[name].add(group)
        return name

    def set_group_var(self, group: str, key: str, value: Any, where: str) -> None:
        """Set a group variable; ``ansible_group_priority`` sets the priority instead."""
        if key == "ansible_group_priority":
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                raise InventoryError(
                    f"{where}: ansible_group_priority of group {group!r} must be a number"
                ) from None
        else:
            self.groups[group].vars[str(key)] = value

    def set_host_var(self, host: str, key: str, value: Any) -> None:
        """Set a host variable (later sources win)."""
        self.hosts[host][str(key)] = value

    def add_child(self, parent: str, child: str, where: str) -> None:
        """Make group ``child`` a child of ``parent``; a loop is an error naming ``where``."""
        p, c = self.groups[parent], self.groups[child]
        if child in p.children:
            return
        path = self._path(child, parent)
        if path is not None:
            loop = " -> ".join([parent, *path])
            raise InventoryError(
                f"{where}: group {parent!r} cannot contain {child!r}: that makes a loop ({loop})"
            )
        p.children.append(child)
        if parent not in c.parents:
            c.parents.append(parent)

    def _path(self, start: str, goal: str) -> list[str] | None:
        """Group names from ``start`` down to ``goal`` through children, if connected."""
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            g, trail = stack.pop()
            if g == goal:
                return trail
            if g in seen:
                continue
            seen.add(g)
            stack.extend((c, [*trail, c]) for c in self.groups[g].children)
        return None

    def ancestors(self, group: str) -> set[str]:
        """Every group above ``group``."""
        out: set[str] = set()
        stack = list(self.groups[group].parents)
        while stack:
            g = stack.pop()
            if g not in out:
                out.add(g)
                stack.extend(self.groups[g].parents)
        return out

    def host_groups(self, host: str) -> set[str]:
        """Groups that hold ``host`` directly or through a child group."""
        out = set(self.direct[host])
        for g in self.direct[host]:
            out |= self.ancestors(g)
        return out

    def reconcile(self) -> None:
        """Apply Ansible's rules once all sources are read.

        Groups with no parent become children of ``all``; hosts in no group go to
        ``ungrouped``; hosts in a real group leave ``ungrouped``; depths are computed.
        """
        for name in list(self.groups):
            if name != "all" and not self.groups[name].parents:
                self.add_child("all", name, f"group {name!r}")
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts:
            groups = self.host_groups(host)
            if "ungrouped" in groups:
                if groups - {"all", "ungrouped"}:
                    ungrouped.hosts.remove(host)
                    self.direct[host].discard("ungrouped")
            elif not groups - {"all"}:
                ungrouped.hosts.append(host)
                self.direct[host].add("ungrouped")
        self._set_depths()

    def _set_depths(self) -> None:
        # Longest path from 'all': the graph is acyclic (add_child refuses loops).
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(root: str) -> None:
            stack: list[tuple[str, bool]] = [(root, False)]
            while stack:
                g, done = stack.pop()
                if done:
                    state[g] = 2
                    order.append(g)
                    continue
                if state.get(g):
                    continue
                state[g] = 1
                stack.append((g, True))
                stack.extend((c, False) for c in self.groups[g].children if not state.get(c))

        visit("all")
        for g in reversed(order):  # parents before children
            for c in self.groups[g].children:
                self.groups[c].depth = max(self.groups[c].depth, self.groups[g].depth + 1)
