"""Hosts, groups and the inventory that holds them.

Loaders (INI, YAML/JSON, Python, AWS EC2) produce an :class:`Inventory`; the engine only
reads it. Variables are merged the way Ansible merges them, so ``Host.vars`` is the
final view a task sees, extra vars (``-e``) included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdlib.inventory._address import LOCALHOST_NAMES
from cdlib.inventory.errors import InventoryError, PatternError
from cdlib.inventory.patterns import select
from cdlib.secret import Secret

__all__ = ["LOCALHOST_NAMES", "Group", "Host", "Inventory", "InventoryError", "PatternError"]


@dataclass
class Group:
    """A named set of hosts with variables and child groups.

    ``vars`` are the group's own variables from inventory sources and group_vars files;
    ``priority`` is ``ansible_group_priority`` (default 1); ``depth`` is the length of the
    longest path from ``all``.
    """

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    priority: int = 1
    depth: int = 0


@dataclass
class Host:
    """One inventory host with its merged variables and the groups it belongs to.

    ``groups`` lists every group the host is in, directly or through a child group,
    except ``all``, in variable-merge order (depth, priority, name).
    """

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    implicit: bool = False

    def var(self, *names: str, default: Any = None) -> Any:
        """The first of ``names`` that is set in this host's vars, else ``default``."""
        for n in names:
            if n in self.vars and self.vars[n] is not None:
                return self.vars[n]
        return default

    @property
    def group_names(self) -> list[str]:
        """Sorted names of the host's groups (Ansible's ``group_names``)."""
        return sorted(self.groups)

    def setting(self, *names: str, default: Any = None) -> Any:
        """Like :meth:`var`, with a :class:`~cdlib.secret.Secret` revealed: for connection
        settings (``ansible_user``, ``ansible_become_password``) kept in a vault file."""
        value = self.var(*names, default=default)
        return value.reveal() if isinstance(value, Secret) else value

    @property
    def address(self) -> str:
        """Where to connect: ``ansible_host`` (or legacy ``ansible_ssh_host``) or the name."""
        return str(self.setting("ansible_host", "ansible_ssh_host", default=self.name))

    @property
    def port(self) -> int:
        """SSH port: ``ansible_port`` / ``ansible_ssh_port``, default 22."""
        value = self.setting("ansible_port", "ansible_ssh_port", default=22)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InventoryError(
                f"host {self.name}: ansible_port must be a number, got {value!r}"
            ) from None

    @property
    def user(self) -> str | None:
        """Login user: ``ansible_user`` / ``ansible_ssh_user``."""
        u = self.setting("ansible_user", "ansible_ssh_user")
        return None if u is None else str(u)

    @property
    def key_file(self) -> str | None:
        """Private key: ``ansible_ssh_private_key_file`` / ``ansible_private_key_file``."""
        k = self.setting("ansible_ssh_private_key_file", "ansible_private_key_file")
        return None if k is None else str(k)

    @property
    def connection(self) -> str:
        """Transport name: ``ansible_connection`` (``ssh`` or ``local``), default ``ssh``."""
        value = str(self.setting("ansible_connection", default="ssh"))
        # Ansible's paramiko/smart transports are all SSH to cdlib.
        return "ssh" if value in ("smart", "paramiko", "paramiko_ssh") else value

    @property
    def become(self) -> bool:
        """Whether to escalate privileges (``ansible_become``)."""
        return _truthy(self.setting("ansible_become", default=False))

    @property
    def become_user(self) -> str:
        """User to become (``ansible_become_user``), default root."""
        return str(self.setting("ansible_become_user", default="root"))


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in {"1", "yes", "true", "on", "y"}
    return bool(v)


class Inventory:
    """Hosts and groups in definition order, with Ansible-style host patterns."""

    def __init__(self, hosts: Iterable[Host] = (), groups: Mapping[str, Group] | None = None):
        self.hosts: dict[str, Host] = {h.name: h for h in hosts}
        self.groups: dict[str, Group] = dict(groups or {})
        if "all" not in self.groups:
            self._add_listed_groups()
            self._add_implicit_groups()
        else:
            self._check_host_groups()
        self._fill_host_groups()
        #: Extra vars (``-e``) already merged into every host; kept for implicit hosts.
        self.extra_vars: dict[str, Any] = {}
        self._implicit: dict[str, Host] = {}

    def _add_listed_groups(self) -> None:
        # An inventory built in code may name a host's groups on the host only
        # (``Host(..., groups=["web"])``): each becomes a group holding the host, so
        # the pattern ``web`` selects it. Groups are copied, never the caller's changed.
        self.groups = {
            n: dataclasses.replace(g, hosts=list(g.hosts), parents=list(g.parents))
            for n, g in self.groups.items()
        }
        for h in self.hosts.values():
            for name in h.groups:
                if name in ("all", "ungrouped"):
                    continue  # made below for every host
                g = self.groups.setdefault(name, Group(name))
                if h.name not in g.hosts:
                    g.hosts.append(h.name)

    def _fill_host_groups(self) -> None:
        # An inventory built in code may list a host in groups only (``Group(hosts=...)``)
        # and leave ``Host.groups`` empty: such a host gets a copy that names every group
        # it is in, directly or through a child group, as the loaders' hosts do.
        bare = {n for n, h in self.hosts.items() if not h.groups}
        if not bare:
            return
        member: dict[str, list[Group]] = {n: [] for n in bare}
        for g in self.groups.values():
            if g.name == "all":
                continue
            for name in self.group_hosts(g.name):
                if name in member:
                    member[name].append(g)
        for name, found in member.items():
            if found:
                found.sort(key=lambda g: (g.depth, g.priority, g.name))
                self.hosts[name] = dataclasses.replace(
                    self.hosts[name], groups=[g.name for g in found]
                )

    def _check_host_groups(self) -> None:
        # With the groups given in full (as the loaders give them), a group a host
        # names but no group lists would be silently ignored by patterns: refuse it.
        for h in self.hosts.values():
            unknown = [g for g in h.groups if g not in self.groups]
            if unknown:
                raise InventoryError(
                    f"host {h.name}: groups {', '.join(map(repr, unknown))} are not "
                    "among the inventory's groups"
                )

    def _add_implicit_groups(self) -> None:
        # An inventory built in code may omit 'all' and 'ungrouped'; make them as the
        # loaders do, so that patterns such as 'all' work the same.
        listed = {h for g in self.groups.values() for h in g.hosts}
        has_parent = {c for g in self.groups.values() for c in g.children}
        ungrouped = self.groups.setdefault("ungrouped", Group("ungrouped"))
        ungrouped.hosts.extend(h for h in self.hosts if h not in listed)
        tops = [g for g in self.groups if g not in has_parent and g != "ungrouped"]
        self.groups["all"] = Group("all", children=["ungrouped", *tops])
        for name in ["ungrouped", *tops]:
            if "all" not in self.groups[name].parents:
                self.groups[name].parents.append("all")

    def select(
        self, pattern: str | Sequence[str], limit: str | Sequence[str] | None = None
    ) -> list[Host]:
        """Hosts matching an Ansible host pattern, in Ansible's order.

        ``limit`` (like ``--limit``) further restricts the result. A term that matches
        nothing is ignored, as in Ansible; see :meth:`select_or_error`.
        """
        return select(self, pattern, limit)

    def select_or_error(
        self, pattern: str | Sequence[str], limit: str | Sequence[str] | None = None
    ) -> list[Host]:
        """Like :meth:`select` but raise :class:`PatternError` when no host matches."""
        hosts = self.select(pattern, limit)
        if not hosts:
            where = f" with limit {limit!r}" if limit else ""
            raise PatternError(f"host pattern {pattern!r}{where} matches no host")
        return hosts

    def get(self, name: str) -> Host:
        """The host called ``name``; ``KeyError`` if unknown."""
        return self.hosts[name]

    def implicit_localhost(self, name: str) -> Host:
        """The implicit local host Ansible makes for ``localhost`` when it is not listed."""
        if name not in self._implicit:
            all_vars = dict(self.groups["all"].vars) if "all" in self.groups else {}
            merged = {**all_vars, "ansible_connection": "local"}
            merged.update(self.extra_vars)
            self._implicit[name] = Host(name, merged, [], implicit=True)
        return self._implicit[name]

    def group_hosts(self, group: str) -> list[str]:
        """Hosts of ``group`` and its descendants, in Ansible's order.

        The group's own hosts come first, then those of its descendants breadth-first,
        each level in definition order.
        """
        if group not in self.groups:
            return []
        ordered: list[str] = []
        seen_hosts: set[str] = set()
        level = [group]
        seen_groups = {group}
        while level:
            nxt: list[str] = []
            for g in level:
                for h in self.groups[g].hosts:
                    if h not in seen_hosts:
                        seen_hosts.add(h)
                        ordered.append(h)
                for c in self.groups[g].children:
                    if c not in seen_groups and c in self.groups:
                        seen_groups.add(c)
                        nxt.append(c)
            level = nxt
        return ordered
