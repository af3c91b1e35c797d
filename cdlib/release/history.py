"""Release history: who released which version when, each step, and the outcome.

One JSON object per release at ``<app>/history/<id>.json`` of the state store
(:mod:`cdlib.release.state`: a local directory or S3), rewritten whole after every
step, so a release killed midway still shows as ``running`` with the steps it
finished, and ``cdlib status`` can tell that it never ended.

Reading is forgiving: fields a newer cdlib added are ignored, and a file that cannot be
read as a record (damaged, hand-edited, truncated by a full disk) is skipped and named
(:attr:`History.skipped`), so ``status``, ``history`` and ``rollback`` keep working.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from cdlib.engine.errors import CdlibError
from cdlib.release.state import Location, app_key, store_for
from cdlib.state import LocalStore, Store

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
ABORTED = "aborted"
#: Stopped from outside (a rollback from another shell, or traffic changed by hand);
#: traffic was left as found.
INTERRUPTED = "interrupted"
OUTCOMES = (RUNNING, SUCCEEDED, FAILED, ROLLED_BACK, ABORTED, INTERRUPTED)


class BadRecord(CdlibError):
    """A history record that cannot be read as a release record; names it and why.

    ``path`` is the local file, or the record's ``s3://`` URL (a string).
    """

    def __init__(self, path: Path | str, why: str, *, where: str = "") -> None:
        self.path = path
        self.why = why
        #: ``line:column`` of a JSON syntax error, else empty.
        self.where = where
        super().__init__(f"{path}{':' + where if where else ''}: {why}")


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
    #: The environment released to (``staging``, ``production``), when the strategy names it.
    environment: str | None = None
    #: The build file released (as given) and its sha256, when the strategy knows it.
    build: str | None = None
    build_sha256: str | None = None
    #: Free-form labels: the strategy's ``metadata`` and ``cdlib run --meta`` (commit, CI URL).
    metadata: dict[str, str] = field(default_factory=dict)
    #: Who approved each gate: ``{"gate", "how", "by", "at"}`` in order.
    approvals: list[dict[str, Any]] = field(default_factory=list)
    #: Canary analysis samples, oldest first (:class:`cdlib.release.sampling.Sample`
    #: as dicts); records written before samples existed load with none.
    samples: list[dict[str, Any]] = field(default_factory=list)
    #: The traffic steps the strategy means to take, in order (a canary's
    #: ``["traffic 10%", "traffic 50%", "traffic 100%"]``: each the start of a step's
    #: name), so a view can say "step 2 of 3"; empty in older records.
    plan: list[str] = field(default_factory=list)

    @property
    def unfinished(self) -> bool:
        """True while (or if it died while) running."""
        return self.outcome == RUNNING

    def to_json(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ReleaseRecord:
        """Rebuild from :meth:`to_json` output.

        Fields this version does not know (written by a newer cdlib) are ignored; a
        missing or mistyped field raises :class:`ValueError` naming it.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, found {type(data).__name__}")
        raw_steps = data.get("steps", [])
        if not isinstance(raw_steps, list):
            raise ValueError("field 'steps' is not a list")
        steps = []
        for i, raw in enumerate(raw_steps, 1):
            try:
                steps.append(_build(StepRecord, raw, _STEP_TYPES))
            except ValueError as exc:
                raise ValueError(f"step {i}: {exc}") from None
        rec = _build(cls, {k: v for k, v in data.items() if k != "steps"}, _RECORD_TYPES)
        rec.steps = steps
        return rec


_T = TypeVar("_T")
_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_OPT_STR = (str, type(None))
_STEP_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "started": _NUM,
    "duration": _OPT_NUM,
    "outcome": (str,),
    "detail": (str,),
}
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "app": (str,),
    "version": (str,),
    "strategy": (str,),
    "id": (str,),
    "user": (str,),
    "machine": (str,),
    "pid": (int,),
    "started": _NUM,
    "finished": _OPT_NUM,
    "outcome": (str,),
    "reason": (str,),
    "previous_version": _OPT_STR,
    "previous_group": _OPT_STR,
    "new_group": _OPT_STR,
    "router": (dict,),
    "weights": (dict,),
    "environment": _OPT_STR,
    "build": _OPT_STR,
    "build_sha256": _OPT_STR,
    "metadata": (dict,),
    "approvals": (list,),
    "samples": (list,),
    "plan": (list,),
}


def _build(cls: type[_T], data: Any, types: dict[str, tuple[type, ...]]) -> _T:
    """``cls(**data)`` keeping known fields only, each of the expected JSON type."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    kept = {k: v for k, v in data.items() if k in known}
    for k, v in kept.items():
        want = types.get(k)
        if want is not None and (not isinstance(v, want) or isinstance(v, bool)):
            raise ValueError(f"field {k!r} has a bad value {v!r}")
    try:
        return cls(**kept)
    except TypeError:
        missing = sorted(
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if f.name not in kept and f.default is MISSING and f.default_factory is MISSING
        )
        raise ValueError(f"missing field(s) {', '.join(map(repr, missing))}") from None


def read_record(path: Path) -> ReleaseRecord:
    """Read one local history file; :class:`BadRecord` (file, line and why) when unreadable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadRecord(path, f"cannot read: {exc.strerror or exc}") from None
    return parse_record(raw, path)


def parse_record(raw: bytes, path: Path | str) -> ReleaseRecord:
    """A record from the bytes of its object ``path``; :class:`BadRecord` when unreadable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRecord(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise BadRecord(path, "empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRecord(
            path, f"invalid JSON: {exc.msg}", where=f"{exc.lineno}:{exc.colno}"
        ) from None
    try:
        return ReleaseRecord.from_json(data)
    except ValueError as exc:
        raise BadRecord(path, f"not a release record: {exc}") from None


class History:
    """The release records of one app.

    Args:
        app: the app's name.
        state_dir: where its state lives: a directory, ``s3://bucket/prefix`` or a
            :class:`~cdlib.state.Store` (default ``$CDLIB_STATE``, else the local one).
        warn: called with a message for each record file that is skipped (unreadable);
            they are also kept in :attr:`skipped`.
    """

    def __init__(
        self,
        app: str,
        *,
        state_dir: Location = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.store: Store = store_for(state_dir)
        self.prefix = app_key(app, "history")
        #: The local directory of the records (for the local store; else a pure path).
        self.dir = (
            self.store.path(self.prefix)
            if isinstance(self.store, LocalStore)
            else PurePosixPath(self.prefix)
        )
        self.warn = warn
        #: The unreadable record files met by the last :meth:`all`, each naming its file.
        self.skipped: list[BadRecord] = []

    def key(self, release_id: str) -> str:
        """Store key of one release's record."""
        return f"{self.prefix}/{release_id}.json"

    def path(self, release_id: str) -> Path | str:
        """File of one release (local store), else its full name (``s3://...``)."""
        if isinstance(self.store, LocalStore):
            return self.store.path(self.key(release_id))
        return self.store.where(self.key(release_id))

    def save(self, rec: ReleaseRecord) -> None:
        """Write a record whole (a local file atomically, 0600)."""
        self.store.put_json(self.key(rec.id), rec.to_json())

    def get(self, release_id: str) -> ReleaseRecord | None:
        """One record by id; ``None`` when absent, :class:`BadRecord` when unreadable."""
        blob = self.store.get(self.key(release_id))
        if blob is None:
            return None
        return parse_record(blob.data, self.path(release_id))

    def all(self) -> list[ReleaseRecord]:
        """Every readable record, oldest first; unreadable ones are skipped and named."""
        self.skipped = []
        out = []
        for name in self.store.names(self.prefix):
            if not name.endswith(".json"):
                continue
            try:
                rec = self.get(name[: -len(".json")])
                if rec is not None:
                    out.append(rec)
            except BadRecord as bad:
                self.skipped.append(bad)
                if self.warn is not None:
                    self.warn(f"skipped unreadable release record {bad}")
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

    def approval(self, entry: dict[str, Any]) -> None:
        """Record who approved a gate, and save."""
        self.rec.approvals.append(dict(entry))
        self.history.save(self.rec)

    def weights(self, weights: dict[str, int]) -> None:
        """Record where traffic stands now."""
        self.rec.weights = dict(weights)
        self.history.save(self.rec)

    def samples(self, entries: list[dict[str, Any]]) -> None:
        """Add analysis samples and save."""
        self.rec.samples.extend(entries)
        self.history.save(self.rec)

    def finish(self, outcome: str, reason: str = "") -> None:
        """End the release."""
        self.rec.outcome = outcome
        self.rec.reason = reason
        self.rec.finished = time.time()
        self.history.save(self.rec)
