"""The mark_bad task: mark an installed release bad (or good again).

A bad release is skipped by :mod:`cdlib.tasks.install_rollback` and refused by
:mod:`cdlib.tasks.install`; the marks live under :class:`cdlib.install.layout.AppLayout`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Prediction, Task, option
from cdlib.facts.base import Fact
from cdlib.facts.release import ReleaseFact, ReleaseState
from cdlib.install.layout import AppLayout, log_record
from cdlib.install.lock import deploy_lock
from cdlib.install.scripts import mark_script


@dataclass(kw_only=True)
class MarkBadPlan(Plan):
    """A mark_bad plan: the version whose mark changes, and the state found."""

    version: str = ""
    before: ReleaseState | None = None


@dataclass
class MarkBad(Task[MarkBadPlan]):
    """Mark a release bad (rollback skips it, install refuses it) or good again.

    Options: ``app``; ``version`` (default: the current release); ``bad`` (``False``
    clears the mark); ``reason`` (kept in the release log); ``root``; ``lock_timeout``.
    Check mode reports the mark it would set or clear.

    Example:
        ```python
        play.task(tasks.mark_bad("shop", "1.4.0"))
        ```
    """

    app: str = field(metadata=option(templated=True))
    version: str | None = field(default=None, metadata=option(templated=True))
    bad: bool = True
    reason: str = field(default="", metadata=option(templated=True))
    root: str | None = field(default=None, metadata=option(templated=True))
    lock_timeout: float = 60.0

    kind = "mark_bad"

    @property
    def layout(self) -> AppLayout:
        """Where the app lives on the host."""
        return AppLayout.of(self.app, self.root)

    @property
    def app_root(self) -> str:
        """``root`` or ``/srv/<app>``."""
        return self.layout.root

    def describe(self) -> str:
        """``mark_bad app V``."""
        word = "mark_bad" if self.bad else "mark_good"
        return f"{word} {self.app} {self.version or '(current)'}"

    def facts(self) -> list[Fact[object]]:
        """The app's release state."""
        return [ReleaseFact(self.app_root)]

    def plan(self, ctx: HostContext) -> MarkBadPlan:
        """Is the mark already as asked?"""
        st: ReleaseState = ctx.fact(ReleaseFact(self.app_root))
        v = self.version or st.current_version
        if v is None:
            raise TaskFailed(f"mark_bad {self.app}: no version given and no current release")
        if v not in st.releases:
            raise TaskFailed(f"mark_bad {self.app}: release {v} is not installed")
        if (v in st.bad) == self.bad:
            return MarkBadPlan(ok_msg=f"{v} already {'bad' if self.bad else 'good'}", version=v)
        return MarkBadPlan(
            changes=[f"mark {v} {'bad' if self.bad else 'good'}"],
            affects=[self.app_root],
            version=v,
            before=st,
        )

    def predict(self, plan: MarkBadPlan) -> list[Prediction] | None:
        """Check mode: later rollbacks in the run see the mark."""
        st = plan.before
        if st is None:
            return None
        bad = st.bad | {plan.version} if self.bad else st.bad - {plan.version}
        return [(ReleaseFact(self.app_root), dataclasses.replace(st, bad=frozenset(bad)))]

    def apply(self, ctx: HostContext, plan: MarkBadPlan) -> str | None:
        """Set or clear the mark under the lock."""
        root = self.app_root
        v = plan.version
        with deploy_lock(ctx, self.app, self.layout.lock_path, self.lock_timeout) as lock:
            rec = log_record("bad" if self.bad else "good", v, lock.owner, reason=self.reason)
            try:
                ctx.run(mark_script(root, v, self.bad, rec) + "\n" + lock.release_snippet())
                lock.released = True
            finally:
                ctx.facts.invalidate([root])
        return None


#: Lowercase alias, as playbooks usually spell tasks.
mark_bad = MarkBad
