"""The journal of one release: its lock, its history record, its result lines, hooks.

Every strategy step goes through :meth:`Journal.step`, which times it, writes it to the
app's history and reports it as a result line (host ``release:<app>``) in the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cdlib.engine.contract import RunContext
from cdlib.engine.play import Play
from cdlib.engine.results import TaskResult
from cdlib.engine.task import Status
from cdlib.release.analysis import Measurement
from cdlib.release.gates import ABORT, Aborted, Gate, received, sender
from cdlib.release.history import FAILED, History, Recorder, ReleaseRecord
from cdlib.release.hooks import HookEvent
from cdlib.release.interrupt import check as check_interrupt
from cdlib.release.lock import ReleaseLock
from cdlib.release.sampling import Sample
from cdlib.release.spec import StrategySpec

if TYPE_CHECKING:
    from cdlib.release.alarms import AlarmWatch


@dataclass
class StepNote:
    """What a step reports: its detail, and whether it changed something."""

    detail: str = ""
    changed: bool | None = None


class Journal:
    """Lock, record, step results, hooks and signals of one execution of a strategy."""

    def __init__(self, strategy: StrategySpec, ctx: RunContext[Play], rec: ReleaseRecord) -> None:
        self.s = strategy
        self.ctx = ctx
        self.rec = rec
        self.recorder: Recorder | None = None
        self.play_name = f"release {strategy.app} {strategy.version} ({strategy.kind})"
        self.failure_reported = False
        #: The strategy's CloudWatch alarms, polled at every pause once the release began.
        self.alarm_watch: AlarmWatch | None = None
        self.alarm_when = "after the shift"

    # -- lifecycle -------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the app's release lock and record the release (not in check mode)."""
        if self.ctx.check:
            yield
            return
        lock = ReleaseLock(self.s.app, self.rec.id, state_dir=self.s.state_dir)
        lock.acquire()
        try:
            self.recorder = Recorder(History(self.s.app, state_dir=self.s.state_dir), self.rec)
            yield
        finally:
            lock.release()

    @contextmanager
    def step(self, name: str, *, changes: bool = False) -> Iterator[StepNote]:
        """Time a step, record it, and report it as a result line."""
        t0 = time.monotonic()
        note = StepNote()
        rec = self.recorder.step(name) if self.recorder else None
        try:
            yield note
        except BaseException as exc:
            if self.recorder and rec:
                self.recorder.end_step(rec, FAILED, self.ctx.redact(str(exc)))
            self.report(name, Status.FAILED, str(exc), duration=time.monotonic() - t0, exc=exc)
            self.failure_reported = True
            raise
        if self.recorder and rec:
            self.recorder.end_step(rec, "succeeded", self.ctx.redact(note.detail))
        changed = changes if note.changed is None else note.changed
        self.report(
            name,
            Status.CHANGED if changed else Status.OK,
            note.detail,
            duration=time.monotonic() - t0,
        )

    def report(
        self,
        task: str,
        status: Status,
        msg: str,
        *,
        duration: float = 0.0,
        exc: BaseException | None = None,
        changes: list[str] | None = None,
    ) -> None:
        """Emit one result line for the release."""
        self.ctx.emit(
            TaskResult(
                play=self.play_name,
                host=f"release:{self.s.app}",
                task=task,
                status=status,
                msg=msg,
                origin=str(self.s.origin),
                duration=duration,
                exception=exc,
                changes=changes or ([msg] if status is Status.CHANGED and msg else []),
            )
        )

    def hook(
        self,
        stage: str,
        group: str | None,
        weights: Mapping[str, int] | None = None,
        detail: str = "",
    ) -> None:
        """Fire a hook (not in check mode)."""
        if self.ctx.check:
            return
        self.s.hooks.fire(
            HookEvent(
                stage, self.s.app, self.s.version, group, dict(weights or {}), self.rec.id, detail
            )
        )

    def aborted(self) -> bool:
        """Whether ``cdlib abort`` was sent to this release."""
        return (
            not self.ctx.check
            and received(self.s.app, self.rec.id, state_dir=self.s.state_dir) == ABORT
        )

    def sleep(self, seconds: float) -> None:
        """Wait, but stop early: :class:`Aborted` on ``cdlib abort``, ``Interrupted``
        when ``cdlib rollback`` interrupted the release, ``AlarmFired`` when a watched
        CloudWatch alarm is in ``ALARM``."""
        end = time.monotonic() + seconds
        while True:
            if self.aborted():
                # Who sent it goes into the release's reason: the history says who stopped it.
                who = sender(self.s.app, self.rec.id, state_dir=self.s.state_dir)
                raise Aborted("aborted by 'cdlib abort'" + (f" from {who}" if who else ""))
            if not self.ctx.check:
                check_interrupt(self.s.app, self.rec.id, state_dir=self.s.state_dir)
                if self.alarm_watch is not None:
                    self.alarm_watch.check(self.alarm_when)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.25, left))

    def weights(self, weights: Mapping[str, int]) -> None:
        """Record where traffic stands."""
        if self.recorder:
            self.recorder.weights(dict(weights))

    def samples(self, samples: list[Sample], m: Measurement, *, left: float) -> None:
        """Record analysis samples and show them (with the time left) as progress."""
        if self.recorder:
            self.recorder.samples([x.to_json() for x in samples])
        if samples:
            self.ctx.progress(
                {
                    "kind": "pause",
                    "release": self.s.app,
                    "step": samples[0].step,
                    "left": round(left, 3),
                    "pause": None,
                    "requests": m.requests,
                    "metrics": {x.metric: (x.value, x.threshold, x.verdict) for x in samples},
                }
            )

    def finish(self, outcome: str, reason: str = "") -> None:
        """Record the end of the release."""
        if self.recorder:
            # The record is a file others may read: secrets the run knows stay masked.
            self.recorder.finish(outcome, self.ctx.redact(reason))

    def gate(self, gate: Gate, title: str) -> None:
        """Wait at ``gate`` as a step; record who approved it (``cdlib promote --by``)."""
        with self.step(title) as st:
            approval = gate.approval(
                self.s.app, self.rec.id, state_dir=self.s.state_dir, sleep=self.sleep
            )
            if self.recorder:
                self.recorder.approval(approval.to_json())
            st.detail = "approved by " + approval.describe()
