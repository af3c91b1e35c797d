"""The install rollback task: switch an app's ``current`` back to an earlier release.

This is the on-host switch of :class:`cdlib.install.layout.AppLayout`'s ``current``
link; a release strategy's rollback (``cdlib rollback``) moves router traffic instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Prediction, Task, option
from cdlib.facts.base import Fact
from cdlib.facts.release import ReleaseFact, ReleaseState
from cdlib.install.layout import AppLayout, lock_note, log_record
from cdlib.install.lock import deploy_lock
from cdlib.install.scripts import switch_script
from cdlib.install.state import previous_good


@dataclass(kw_only=True)
class InstallRollbackPlan(Plan):
    """An install rollback plan: the release to switch to, from which, and the state found."""

    to: str | None = None
    previous: str | None = None
    before: ReleaseState


@dataclass
class InstallRollback(Task[InstallRollbackPlan]):
    """Switch ``current`` back to the previous good release, or to release ``to``.

    Options: ``app``; ``to`` (a release name; default: the newest release installed before
    the current one that is not marked bad); ``root`` (default ``/srv/<app>``);
    ``mark_bad`` (also mark the release rolled back from as bad, so a re-run of the
    install does not bring it back); ``lock_timeout``. Fails clearly when there is no
    release to go back to or ``to`` is missing or bad. Check mode reports the switch
    (old -> new) and the bad mark.

    Example:
        ```python
        play.task(tasks.install_rollback("shop", to="1.3.0"))
        ```
    """

    app: str = field(metadata=option(templated=True))
    to: str | None = field(default=None, metadata=option(templated=True))
    root: str | None = field(default=None, metadata=option(templated=True))
    mark_bad: bool = False
    lock_timeout: float = 60.0

    kind = "install_rollback"

    @property
    def layout(self) -> AppLayout:
        """Where the app lives on the host."""
        return AppLayout.of(self.app, self.root)

    @property
    def app_root(self) -> str:
        """``root`` or ``/srv/<app>``."""
        return self.layout.root

    def describe(self) -> str:
        """``install_rollback app [to V]`` (``rollback ...`` under the old name)."""
        return f"{self.kind} {self.app}" + (f" to {self.to}" if self.to else "")

    def facts(self) -> list[Fact[object]]:
        """The app's release state."""
        return [ReleaseFact(self.app_root)]

    def plan(self, ctx: HostContext) -> InstallRollbackPlan:
        """Pick the target release."""
        return self._decide(ctx.fact(ReleaseFact(self.app_root)), ctx.host, note_lock=True)

    def _decide(self, st: ReleaseState, host: str, note_lock: bool = False) -> InstallRollbackPlan:
        cur = st.current_version
        if self.to is not None:
            if self.to not in st.releases:
                have = ", ".join(sorted(st.releases)) or "none"
                raise TaskFailed(
                    f"cannot roll back {self.app} on {host} to {self.to}: not installed "
                    f"(installed: {have})"
                )
            if self.to in st.bad:
                raise TaskFailed(f"cannot roll back {self.app} to {self.to}: it is marked bad")
            target: str | None = self.to
        else:
            if cur is None:
                raise TaskFailed(f"cannot roll back {self.app} on {host}: no current release")
            target = previous_good(st, cur)
            if target is None:
                raise TaskFailed(
                    f"cannot roll back {self.app} on {host}: no good release before {cur} "
                    f"(bad: {', '.join(sorted(st.bad)) or 'none'})"
                )
        changes = []
        if target != cur:
            changes.append(f"switch current {cur or '(none)'} -> {target}")
            if self.mark_bad and cur:
                changes.append(f"mark {cur} bad")
            if note_lock:
                changes += lock_note(st, self.lock_timeout)
        return InstallRollbackPlan(
            changes=changes,
            affects=[self.app_root],
            to=target,
            previous=cur,
            before=st,
            ok_msg=f"{cur} current",
        )

    def predict(self, plan: InstallRollbackPlan) -> list[Prediction] | None:
        """Check mode: ``current`` switched (and the old one marked bad when asked)."""
        st = plan.before
        to, frm = plan.to, plan.previous
        bad = st.bad | {frm} if self.mark_bad and frm else st.bad
        after = dataclasses.replace(
            st, current=self.layout.release_dir(str(to)), bad=frozenset(bad)
        )
        return [(ReleaseFact(self.app_root), after)]

    def apply(self, ctx: HostContext, plan: InstallRollbackPlan) -> str | None:
        """Switch under the lock."""
        root = self.app_root
        facts = [ReleaseFact(root)]
        with deploy_lock(
            ctx, self.app, self.layout.lock_path, self.lock_timeout, then=facts
        ) as lock:
            owner = lock.owner
            fresh = self._decide(lock.state[0], ctx.host)
            if not fresh.changes:
                plan.changes = []
                return None
            to, frm = fresh.to, fresh.previous
            assert to is not None  # a plan with changes has a target
            records = [log_record("rollback", to, owner, previous=frm)]
            bad = frm if self.mark_bad and frm else None
            if bad:
                records.append(log_record("bad", bad, owner, reason="rolled back"))
            try:
                ctx.run(
                    switch_script(root, to, records, mark_bad=bad) + "\n" + lock.release_snippet()
                )
                lock.released = True
            finally:
                ctx.facts.invalidate([root])
            plan.changes = fresh.changes
        return None


class Rollback(InstallRollback):
    """Deprecated alias of :class:`InstallRollback` (``tasks.rollback``): use
    ``tasks.install_rollback``.

    Kept so playbooks written for cdlib before the rename still run unchanged; its
    task kind and label stay ``rollback``. Options and check mode are those of
    :class:`InstallRollback`.

    Example:
        ```python
        play.task(tasks.rollback("shop"))  # deprecated
        ```
    """

    kind = "rollback"


#: Lowercase aliases, as playbooks usually spell tasks. ``rollback`` is the deprecated
#: spelling of ``install_rollback``.
install_rollback = InstallRollback
rollback = Rollback
