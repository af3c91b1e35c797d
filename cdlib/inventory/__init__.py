"""Inventories: hosts, groups, variables and host patterns."""

from cdlib.inventory.loader import load_inventory
from cdlib.inventory.model import Group, Host, Inventory, InventoryError

__all__ = ["Group", "Host", "Inventory", "InventoryError", "load_inventory"]
