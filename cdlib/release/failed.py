"""The error a release stops with, below every release module that raises it."""

from __future__ import annotations

from cdlib.errors import CdlibError


class ReleaseFailed(CdlibError):
    """A release stopped; ``rolled_back`` says whether traffic was moved back, ``aborted``
    whether it stopped because it was aborted (``cdlib abort``, a rejected or timed-out
    gate) rather than because something failed."""

    def __init__(self, message: str, *, rolled_back: bool = False, aborted: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back
        self.aborted = aborted
