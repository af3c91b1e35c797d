"""Release history: who released which version when, each step, and the outcome.

One JSON file per release under ``<state>/<app>/history/``, rewritten atomically after
every step, so a release killed midway still shows as ``running`` with the steps it
finished, and ``cdlib status`` can tell that it never ended.
"""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cdlib.release.state import app_dir, read_json, write_json_atomic

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
ABORTED = "aborted"
OUTCOMES = (RUNNING, SUCCEEDED, FAILED, ROLLED_BACK, ABORTED)


@dataclass
class StepRecord:
    """One step of a release (deploy, preview checks, a traffic shift, analysis ...)."""

    name: str
    started: float
    duration: float | None = None
    outcome: str = RUNNING
    detail: str = ""


@dataclass
class ReleaseRecord:
    """Everything recorded about one release."""

    app: str
    version: str
    strategy: str
    id: str = field(
        default_factory=lambda: time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    )
    user: str = field(default_factory=getpass.getuser)
    machine: str = field(default_factory=socket.gethostname)
    pid: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    outcome: str = RUNNING
    reason: str = ""
    previous_version: str | None = None
    previous_group: str | None = None
    new_group: str | None = None
    router: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    #: Where traffic stands now, as last written (``{"blue": 100, "green": 0}``).
    weights: dict[str, int] = field(default_factory=dict)

    @property
    def unfinished(self) -> bool:
        """True while (or if it died while) running."""
        return self.outcome == RUNNING

    def to_json(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseRecord:
        """Rebuild from :meth:`to_json` output."""
        steps = [StepRecord(**s) for s in data.get("steps", [])]
        fields = {k: v for k, v in data.items() if k != "steps"}
        return cls(**fields, steps=steps)


class History:
    """The release records of one app."""

    def __init__(self, app: str, *, state_dir: str | None = None) -> None:
        self.app = app
        self.dir = app_dir(app, state_dir) / "history"

    def path(self, release_id: str) -> Path:
        """File of one release."""
        return self.dir / f"{release_id}.json"

    def save(self, rec: ReleaseRecord) -> None:
        """Write a record atomically."""
        write_json_atomic(self.path(rec.id), rec.to_json())

    def get(self, release_id: str) -> ReleaseRecord | None:
        """One record by id."""
        data = read_json(self.path(release_id))
        return ReleaseRecord.from_json(data) if data else None

    def all(self) -> list[ReleaseRecord]:
        """Every record, oldest first."""
        if not self.dir.exists():
            return []
        out = []
        for p in self.dir.glob("*.json"):
            data = read_json(p)
            if data:
                out.append(ReleaseRecord.from_json(data))
        return sorted(out, key=lambda r: (r.started, r.id))

    def latest(self) -> ReleaseRecord | None:
        """The most recent record."""
        recs = self.all()
        return recs[-1] if recs else None

    def last_good(self) -> ReleaseRecord | None:
        """The most recent release that succeeded."""
        for r in reversed(self.all()):
            if r.outcome == SUCCEEDED:
                return r
        return None


class Recorder:
    """Records a release's steps as they happen (used by strategies)."""

    def __init__(self, history: History, rec: ReleaseRecord) -> None:
        self.history = history
        self.rec = rec
        self.history.save(rec)

    def step(self, name: str) -> StepRecord:
        """Start a step and save."""
        s = StepRecord(name, time.time())
        self.rec.steps.append(s)
        self.history.save(self.rec)
        return s

    def end_step(self, s: StepRecord, outcome: str, detail: str = "") -> None:
        """Finish a step with its outcome and save."""
        s.duration = round(time.time() - s.started, 3)
        s.outcome = outcome
        s.detail = detail
        self.history.save(self.rec)

    def weights(self, weights: dict[str, int]) -> None:
        """Record where traffic stands now."""
        self.rec.weights = dict(weights)
        self.history.save(self.rec)

    def finish(self, outcome: str, reason: str = "") -> None:
        """End the release."""
        self.rec.outcome = outcome
        self.rec.reason = reason
        self.rec.finished = time.time()
        self.history.save(self.rec)
