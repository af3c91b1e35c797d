"""Handlers notified on a host but not run yet, remembered on the host between runs.

A task that changed notifies handlers; they run at the end of the play (or at a
``flush_handlers`` task). When the host fails before that (a smoke check after a
release), the notification would be lost and the next run, finding nothing to change,
would never restart the app. So a real run leaves one small marker file per notified
handler on the host, removes it once the handler ran, and the next run of the same play
reads the markers left and notifies those handlers again.

Markers live in ``/var/lib/cdlib/handlers/`` when the login (or become) user may write
``/var/lib``, else in ``~/.cache/cdlib/handlers/``. A marker is named by digests of the
play's and the handler's names and holds the handler's name (for a person looking).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable

from cdlib.connections.shell import q
from cdlib.facts.base import Fact

#: Sets ``$d`` to the marker directory (builtins only: no process when nothing is left).
_DIR = (
    "if [ -w /var/lib/cdlib/handlers ] || [ -w /var/lib ]; then d=/var/lib/cdlib/handlers; "
    # Never a shared /tmp: without a HOME there are no markers (they are best effort).
    'else d="${HOME:?}/.cache/cdlib/handlers"; fi'
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def marker_name(play: str, handler: str) -> str:
    """The marker file of ``handler`` notified in ``play``."""
    return f"{_digest(play)}-{_digest(handler)}"


class PendingHandlersFact(Fact[frozenset[str]]):
    """Marker names left on the host for ``play`` (handlers notified and never run)."""

    def __init__(self, play: str) -> None:
        self.play = play

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("pending-handlers", self.play)

    def command(self) -> str:
        """One marker file name a line."""
        return (
            f'{_DIR}; for f in "$d"/{_digest(self.play)}-*; do '
            '[ -f "$f" ] && printf "marker=%s\\n" "${f##*/}"; done; true'
        )

    def parse(self, output: str, exit_code: int) -> frozenset[str]:
        """The marker names."""
        return parse_markers(output)


def parse_markers(output: str) -> frozenset[str]:
    """Pure parser of :class:`PendingHandlersFact` output."""
    return frozenset(
        line.split("=", 1)[1].strip()
        for line in output.splitlines()
        if line.startswith("marker=") and line.strip() != "marker="
    )


def pending(play: str, handlers: Iterable[str], markers: frozenset[str]) -> set[str]:
    """The handlers of ``play`` whose markers are in ``markers``."""
    return {h for h in handlers if marker_name(play, h) in markers}


def mark_command(play: str, handlers: Iterable[str]) -> str:
    """Leave a marker for each of ``handlers`` (private directory, one line of text each)."""
    writes = " && ".join(
        f'printf "%s\\n" {q(h)} > "$d"/{q(marker_name(play, h))}' for h in sorted(handlers)
    )
    return f'{_DIR}; umask 077; mkdir -p -- "$d" && {writes}'


def clear_command(play: str, handlers: Iterable[str]) -> str:
    """Remove the markers of ``handlers`` (they ran)."""
    files = " ".join(f'"$d"/{q(marker_name(play, h))}' for h in sorted(handlers))
    return f"{_DIR}; rm -f -- {files}"
