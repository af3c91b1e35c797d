"""The root of cdlib's errors and the exit codes they map to.

Every error a user can meet derives from :class:`CdlibError`, whose ``exit_code``
says how the ``cdlib`` command ends on it, so a boundary (the CLI, a release step)
catches one class. This module imports nothing of cdlib: every layer may use it.
"""

from __future__ import annotations

#: Exit codes, as Ansible's where they overlap (the table is in docs/cli.md).
EXIT_OK = 0
#: An internal error: a bug in cdlib (``cdlib: internal error: ...``).
EXIT_INTERNAL = 1
EXIT_FAILED = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_INPUT = 4
EXIT_USAGE = 5
EXIT_INTERRUPTED = 99


class CdlibError(Exception):
    """Base class of cdlib's own errors; ``exit_code`` is the command's exit status."""

    #: How ``cdlib`` exits on this error (subclasses for bad input use ``EXIT_BAD_INPUT``).
    exit_code: int = EXIT_FAILED
