"""Shell snippets for tasks (they live in :mod:`cdlib.connections.shell`)."""

from cdlib.connections.shell import (
    atomic_symlink_command,
    atomic_write_command,
    attrs_command,
    q,
)

__all__ = ["atomic_symlink_command", "atomic_write_command", "attrs_command", "q"]
