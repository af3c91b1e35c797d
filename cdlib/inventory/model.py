"""Hosts, groups and the inventory that holds them.

Loaders (YAML, INI, Python, AWS EC2) produce an :class:`Inventory`; the engine only
reads it. Variables are merged the way Ansible merges them, so ``Host.vars`` is the
final view a task sees before play and extra vars are layered on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Group:
    """A named set of hosts with variables and child groups."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class Host:
    """One inventory host with its merged variables and the groups it belongs to."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)

    def var(self, *names: str, default: Any = None) -> Any:
        """The first of ``names`` that is set in this host's vars, else ``default``."""
        for n in names:
            if n in self.vars and self.vars[n] is not None:
                return self.vars[n]
        return default

    @property
    def address(self) -> str:
        """Where to connect: ``ansible_host`` (or legacy ``ansible_ssh_host``) or the name."""
        return str(self.var("ansible_host", "ansible_ssh_host", default=self.name))

    @property
    def port(self) -> int:
        """SSH port: ``ansible_port`` / ``ansible_ssh_port``, default 22."""
        return int(self.var("ansible_port", "ansible_ssh_port", default=22))

    @property
    def user(self) -> str | None:
        """Login user: ``ansible_user`` / ``ansible_ssh_user``."""
        u = self.var("ansible_user", "ansible_ssh_user")
        return None if u is None else str(u)

    @property
    def key_file(self) -> str | None:
        """Private key: ``ansible_ssh_private_key_file`` / ``ansible_private_key_file``."""
        k = self.var("ansible_ssh_private_key_file", "ansible_private_key_file")
        return None if k is None else str(k)

    @property
    def connection(self) -> str:
        """Transport name: ``ansible_connection``, default ``ssh``."""
        return str(self.var("ansible_connection", default="ssh"))

    @property
    def become(self) -> bool:
        """Whether to escalate privileges (``ansible_become``)."""
        return _truthy(self.var("ansible_become", default=False))

    @property
    def become_user(self) -> str:
        """User to become (``ansible_become_user``), default root."""
        return str(self.var("ansible_become_user", default="root"))


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in {"1", "yes", "true", "on", "y"}
    return bool(v)


class InventoryError(Exception):
    """A problem in an inventory source; the message names the file and line."""


class Inventory:
    """Hosts and groups in definition order, with Ansible-style host patterns."""

    def __init__(self, hosts: Iterable[Host] = (), groups: Mapping[str, Group] | None = None):
        self.hosts: dict[str, Host] = {h.name: h for h in hosts}
        self.groups: dict[str, Group] = dict(groups or {})

    def select(self, pattern: str) -> list[Host]:
        """Hosts matching an Ansible host pattern, in inventory order."""
        from cdlib.inventory.patterns import select

        return [self.hosts[n] for n in select(self, pattern)]

    def get(self, name: str) -> Host:
        """The host called ``name``; ``KeyError`` if unknown."""
        return self.hosts[name]

    def group_hosts(self, group: str) -> list[str]:
        """All hosts of ``group`` and its descendants, in inventory order."""
        if group == "all":
            return list(self.hosts)
        seen: set[str] = set()
        members: set[str] = set()
        stack = [group]
        while stack:
            g = stack.pop()
            if g in seen or g not in self.groups:
                continue
            seen.add(g)
            members.update(self.groups[g].hosts)
            stack.extend(self.groups[g].children)
        return [h for h in self.hosts if h in members]
