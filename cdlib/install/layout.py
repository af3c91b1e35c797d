"""One app's directories on a host, and the records the install tasks write under them.

Layout under ``root`` (default ``/srv/<app>``)::

    releases/<V>/     the unpacked build, config rendered into it, REVISION, links to shared/
    shared/           data kept across releases (logs, uploads, ...)
    current           symlink to releases/<V>, switched atomically (link a temp name, rename)
    .cdlib/           releases.jsonl (log), bad/<V> (bad marks), deploy.lock
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cdlib.facts.release import ReleaseState
from cdlib.install.lock import LockOwner, parse_owner


@dataclass(frozen=True)
class AppLayout:
    """Where ``app`` lives on a host: ``root`` and the paths under it."""

    app: str
    root: str

    @classmethod
    def of(cls, app: str, root: str | None) -> AppLayout:
        """The layout of ``app`` at ``root``, by default ``/srv/<app>``."""
        return cls(app, (root or f"/srv/{app}").rstrip("/"))

    @property
    def lock_path(self) -> str:
        """The app's deploy lock file."""
        return f"{self.root}/.cdlib/deploy.lock"

    def release_dir(self, version: str) -> str:
        """``releases/<version>`` under the root."""
        return f"{self.root}/releases/{version}"

    def shared(self, path: str) -> str:
        """``shared/<path>`` under the root."""
        return f"{self.root}/shared/{path}"


def log_record(action: str, version: str, owner: LockOwner, **extra: Any) -> dict[str, Any]:
    """One line of the app's release log (``.cdlib/releases.jsonl``)."""
    return {
        "action": action,
        "version": version,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": f"{owner.user}@{owner.host}",
        **extra,
    }


def lock_note(state: ReleaseState, timeout: float) -> list[str]:
    """A line for check mode when another run holds the lock right now."""
    if state.lock is None:
        return []
    holder = parse_owner(state.lock)
    who = holder.describe() if holder else "another run"
    return [f"deploy lock held by {who}: a real run waits up to {timeout:g}s"]
