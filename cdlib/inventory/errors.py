"""The inventory's errors (re-exported by :mod:`cdlib.inventory.model`)."""

from cdlib.errors import EXIT_BAD_INPUT, CdlibError


class InventoryError(CdlibError):
    """A problem in an inventory source; the message names the file and line."""

    exit_code = EXIT_BAD_INPUT


class PatternError(InventoryError):
    """A host pattern is malformed or matches no host; the message names the pattern."""
