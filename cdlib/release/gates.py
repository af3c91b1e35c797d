"""Manual gates: a release step waits for approval from ``cdlib promote`` or a callback.

Signals travel through the object ``<app>/control.json`` of the state store (changed
with conditional writes, so two senders never lose one another's signal): ``cdlib
promote`` and ``cdlib abort`` work from another terminal, CI job or machine that uses
the same store (directory or S3 bucket).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from cdlib.errors import CdlibError
from cdlib.release import interrupt
from cdlib.release.state import Location, app_key, store_for

PROMOTE = "promote"
ABORT = "abort"


def _signals(old: Any) -> dict[str, Any]:
    return dict(old) if isinstance(old, dict) else {}


def send(
    app: str, release_id: str, signal: str, *, by: str = "", state_dir: Location = None
) -> None:
    """Record ``promote`` or ``abort`` for a running release."""
    entry = {"signal": signal, "by": by, "at": time.time()}
    store_for(state_dir).update_json(
        app_key(app, "control.json"), lambda old: {**_signals(old), release_id: entry}
    )


def received(app: str, release_id: str, *, state_dir: Location = None) -> str | None:
    """The signal sent to a release, if any."""
    entry = _entry(app, release_id, state_dir)
    return entry.get("signal") if entry else None


def _entry(app: str, release_id: str, state_dir: Location) -> dict[str, Any] | None:
    data = _signals(store_for(state_dir).get_json(app_key(app, "control.json")))
    entry = data.get(release_id)
    return entry if isinstance(entry, dict) else None


def sender(app: str, release_id: str, *, state_dir: Location = None) -> str:
    """Who sent the signal a release received (``cdlib promote`` records the user)."""
    entry = _entry(app, release_id, state_dir)
    by = entry.get("by") if entry else None
    return by if isinstance(by, str) else ""


def clear(app: str, release_id: str, *, state_dir: Location = None) -> None:
    """Forget a release's signal (after it was acted on)."""

    def drop(old: Any) -> dict[str, Any] | None:
        data = _signals(old)
        return data if data.pop(release_id, None) is not None else None

    store_for(state_dir).update_json(app_key(app, "control.json"), drop)


class Aborted(CdlibError):
    """``cdlib abort`` (or a gate timeout) stopped the release."""


@dataclass(frozen=True)
class Approval:
    """How a gate was passed: ``how`` is ``promote``, ``callback`` or ``timeout``; ``by``
    is who sent ``cdlib promote`` (``--by``, default user@machine), else empty."""

    gate: str
    how: str
    by: str = ""
    at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The history record's form."""
        return {"gate": self.gate, "how": self.how, "by": self.by, "at": self.at}

    def describe(self) -> str:
        """``'cdlib promote' by alice@ci``, ``callback`` or ``timeout``."""
        return f"'cdlib promote' by {self.by or 'unknown'}" if self.how == PROMOTE else self.how


@dataclass
class Gate:
    """Wait for approval.

    Args:
        name: shown in output and history.
        approve: a callable returning ``True`` (approve), ``False`` (reject) or ``None``
            (not decided yet); polled with ``cdlib promote`` signals.
        timeout: seconds to wait; then ``on_timeout`` decides.
        on_timeout: ``abort`` (default) or ``continue``.
        poll: seconds between checks.
    """

    name: str = "approval"
    approve: Callable[[], bool | None] | None = None
    timeout: float = 3600.0
    on_timeout: Literal["abort", "continue"] = "abort"
    poll: float = 0.5

    def wait(
        self,
        app: str,
        release_id: str,
        *,
        state_dir: Location = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Block until approved; returns how (``promote``, ``promote from USER`` when the
        signal names its sender, ``callback``, ``timeout``).

        :meth:`approval` does the same and also says who approved.
        """
        got = self.approval(app, release_id, state_dir=state_dir, sleep=sleep)
        return f"promote from {got.by}" if got.how == PROMOTE and got.by else got.how

    def approval(
        self,
        app: str,
        release_id: str,
        *,
        state_dir: Location = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Approval:
        """Block until approved; return the :class:`Approval` (how, by whom, when).

        Raises :class:`Aborted` on ``cdlib abort``, a rejecting callback, or a timeout
        with ``on_timeout="abort"``; :class:`~cdlib.release.interrupt.Interrupted` when
        ``cdlib rollback`` interrupted the release.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            interrupt.check(app, release_id, state_dir=state_dir)
            entry = _entry(app, release_id, state_dir) or {}
            sig = entry.get("signal")
            if sig == ABORT:
                by = entry.get("by")
                frm = f" from {by}" if isinstance(by, str) and by else ""
                raise Aborted(f"gate {self.name!r}: aborted by 'cdlib abort'{frm}")
            if sig == PROMOTE:
                by = entry.get("by")
                who = by if isinstance(by, str) else ""
                clear(app, release_id, state_dir=state_dir)
                return Approval(self.name, PROMOTE, who, time.time())
            if self.approve is not None:
                verdict = self.approve()
                if verdict is True:
                    return Approval(self.name, "callback", "", time.time())
                if verdict is False:
                    raise Aborted(f"gate {self.name!r}: rejected by callback")
            if time.monotonic() >= deadline:
                if self.on_timeout == "continue":
                    return Approval(self.name, "timeout", "", time.time())
                raise Aborted(f"gate {self.name!r}: no approval within {self.timeout:g}s")
            sleep(self.poll)
