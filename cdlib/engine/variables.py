"""Variable precedence: what a task sees on a host, and extra vars over an inventory."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cdlib.engine.play import Play
from cdlib.inventory.model import Host, Inventory


def host_vars(
    host: Host, play: Play, inv: Inventory, extra: Mapping[str, Any], playbook_dir: Path
) -> dict[str, Any]:
    """The variables a task sees on ``host``: inventory < play vars < extra vars < magic."""
    v: dict[str, Any] = dict(host.vars)
    v.update(play.vars)
    v.update(extra)
    v["inventory_hostname"] = host.name
    v["group_names"] = sorted(g for g in host.groups if g not in ("all", "ungrouped"))
    v["groups"] = {g: inv.group_hosts(g) for g in inv.groups}
    v["playbook_dir"] = str(playbook_dir)
    return v


def with_extra_vars(inv: Inventory, extra: Mapping[str, object]) -> Inventory:
    """``inv`` with ``extra`` merged over every host's vars, as a copy.

    The caller's :class:`Host` objects are left as they were, so running twice with
    different ``-e`` values, or a release's deploy vars, never leaks into later runs.
    """
    if not extra:
        return inv
    hosts = [dataclasses.replace(h, vars={**h.vars, **extra}) for h in inv.hosts.values()]
    out = Inventory(hosts, inv.groups)
    out.extra_vars = {**inv.extra_vars, **extra}
    return out
