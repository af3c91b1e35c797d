"""Release reports: one release as a self-contained HTML page (``cdlib report``).

This package sits on top, next to the CLI: it reads release history and nothing below
imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

from cdlib.errors import EXIT_BAD_INPUT, CdlibError
from cdlib.release.history import History, ReleaseRecord
from cdlib.report.html import render

__all__ = ["ReportError", "release_report", "write_report"]


class ReportError(CdlibError):
    """No such app or release to report on (exit code 4)."""

    exit_code = EXIT_BAD_INPUT


def release_report(app: str, release_id: str | None = None, *, state_dir: str | None = None) -> str:
    """The HTML report of one release of ``app`` (the latest when ``release_id`` is None).

    Raises :class:`ReportError` for an unknown app or release id, and
    :class:`~cdlib.release.history.BadRecord` for a record that cannot be read.
    """
    from cdlib.release.state import state_root

    if not isinstance(app, str) or not app or "/" in app or app in (".", ".."):
        raise ReportError(f"app name {app!r} is invalid")
    # Look before History: it creates the app's directory, and a report changes nothing.
    if not (state_root(state_dir) / app / "history").is_dir():
        raise ReportError(f"no release of app {app!r} recorded in {state_root(state_dir)}")
    try:
        history = History(app, state_dir=state_dir)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    rec: ReleaseRecord | None
    if release_id is None:
        rec = history.latest()
        if rec is None:
            raise ReportError(f"no release of app {app!r} recorded in {history.dir}")
    else:
        rec = history.get(release_id) if _plain_id(release_id) else None
        if rec is None:
            known = [r.id for r in history.all()[-5:]]
            hint = f" (latest: {', '.join(known)})" if known else f" (no release of {app!r})"
            raise ReportError(f"app {app!r} has no release {release_id!r}{hint}")
    raw = json.loads(history.path(rec.id).read_text(encoding="utf-8"))
    return render(rec, raw if isinstance(raw, dict) else None)


def write_report(
    app: str, path: str | Path, release_id: str | None = None, *, state_dir: str | None = None
) -> Path:
    """Write the report of a release to ``path`` (atomically); return the path."""
    from cdlib.atomicfile import write_atomic

    out = Path(path)
    html = release_report(app, release_id, state_dir=state_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600: a report names hosts, metadata and reasons that may be internal.
    write_atomic(out, html, private=True)
    return out


def _plain_id(release_id: str) -> bool:
    # An id names a file in the history directory: never a path.
    return (
        bool(release_id)
        and "/" not in release_id
        and "\\" not in release_id
        and (release_id not in (".", ".."))
    )
