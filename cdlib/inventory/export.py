"""Render an inventory as ``ansible-inventory`` does: ``--list`` JSON, ``--graph``, ``--host``."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

from cdlib.inventory._secrets import REDACTED, is_secret_name, redact
from cdlib.inventory.model import Inventory, InventoryError
from cdlib.secret import Secret

__all__ = [
    "REDACTED",
    "graph",
    "is_secret_name",
    "list_inventory",
    "public_vars",
    "redact",
    "to_json",
]

#: Variables Ansible sets itself and leaves out of ``ansible-inventory`` output.
INTERNAL_VARS = frozenset(
    {
        "ansible_async_path", "ansible_collection_name", "ansible_config_file",
        "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts",
        "ansible_forks", "ansible_inventory_sources", "ansible_limit", "ansible_play_batch",
        "ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_role_names",
        "ansible_playbook_python", "ansible_role_name", "ansible_role_names",
        "ansible_run_tags", "ansible_skip_tags", "ansible_verbosity", "ansible_version",
        "inventory_dir", "inventory_file", "inventory_hostname", "inventory_hostname_short",
        "groups", "group_names", "omit", "hostvars", "playbook_dir", "play_hosts",
        "role_name", "role_names", "role_path",
    }
)  # fmt: skip


def public_vars(variables: Mapping[str, Any], show_secrets: bool = False) -> dict[str, Any]:
    """A host's vars as ``ansible-inventory`` shows them (internal names dropped).

    :class:`~cdlib.secret.Secret` values (vault, SSM, Secrets Manager) and variables with
    secret names are masked unless ``show_secrets``.
    """
    out = {k: _secrets_shown(v, show_secrets) for k, v in variables.items()}
    out = {k: v for k, v in out.items() if k not in INTERNAL_VARS}
    return out if show_secrets else redact(out)


def _secrets_shown(value: Any, show: bool) -> Any:
    if isinstance(value, Secret):
        return value.reveal() if show else REDACTED
    if isinstance(value, Mapping):
        return {k: _secrets_shown(v, show) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_secrets_shown(v, show) for v in value]
    return value


def list_inventory(
    inv: Inventory, limit: str | None = None, show_secrets: bool = False
) -> dict[str, Any]:
    """The ``ansible-inventory --list`` document: groups, then ``_meta.hostvars``."""
    available = [h.name for h in inv.select("all", limit)]
    allowed = set(available)
    result: dict[str, Any] = {}
    seen: set[str] = set()

    def add(name: str) -> None:
        group = inv.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            entry["hosts"] = [h for h in group.hosts if h in allowed]
        entry["children"] = list(group.children)
        for child in group.children:
            if child not in seen:
                seen.add(child)
                add(child)
        entry = {k: v for k, v in entry.items() if v}
        if entry:
            result[name] = entry

    add("all")
    hostvars: dict[str, Any] = {}
    for name in available:
        shown = public_vars(inv.hosts[name].vars, show_secrets)
        if shown:
            hostvars[name] = shown
    result["_meta"] = {"hostvars": hostvars}
    return result


def graph(inv: Inventory, group: str = "all") -> str:
    """The ``ansible-inventory --graph`` tree below ``group``."""
    if group not in inv.groups:
        raise InventoryError(f"--graph needs a group name; {group!r} is not a group")
    lines: list[str] = []

    def walk(name: str, depth: int) -> None:
        lines.append(_graph_line(f"@{name}:", depth))
        for child in inv.groups[name].children:
            walk(child, depth + 1)
        if name != "all":
            lines.extend(_graph_line(h, depth + 1) for h in inv.groups[name].hosts)

    walk(group, 0)
    return "\n".join(lines)


def _graph_line(text: str, depth: int) -> str:
    return "  |" * depth + f"--{text}" if depth else text


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot show a value of type {type(value).__name__} as JSON")


def to_json(document: Any) -> str:
    """JSON the way ``ansible-inventory`` prints it (sorted keys, four-space indent)."""
    return json.dumps(document, sort_keys=True, indent=4, default=_json_default)
