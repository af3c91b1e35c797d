"""Inventories: hosts, groups, variables and host patterns (Ansible-compatible)."""

from cdlib.inventory.extra_vars import parse_extra_vars
from cdlib.inventory.loader import load_inventory
from cdlib.inventory.model import Group, Host, Inventory, InventoryError, PatternError

__all__ = [
    "Group",
    "Host",
    "Inventory",
    "InventoryError",
    "PatternError",
    "load_inventory",
    "parse_extra_vars",
]
