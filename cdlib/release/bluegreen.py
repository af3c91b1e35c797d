"""Blue/green: deploy to the idle group, check it, switch all traffic in one step.

The router is the truth about which group is live. The old group is left untouched, so
``cdlib rollback APP`` switches back in one call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cdlib.engine.task import Status
from cdlib.release.gates import Aborted
from cdlib.release.history import ABORTED, ROLLED_BACK, SUCCEEDED
from cdlib.release.interrupt import Interrupted, change_traffic
from cdlib.release.strategy import ReleaseFailed, ReleaseRun, Strategy
from cdlib.traffic.base import Router, RouterState


def live_and_idle(state: RouterState, groups: list[str]) -> tuple[str | None, str]:
    """Which group is live (``None`` before the first release) and which is idle.

    Raises :class:`ReleaseFailed` when traffic is split between groups (a canary is
    in progress or was interrupted): finish it or roll it back first.
    """
    if len(groups) != 2:
        raise ReleaseFailed(f"blue/green needs exactly two groups, the router has {groups}")
    live = state.live
    if live is None and any(state.weights.get(g, 0) for g in groups):
        raise ReleaseFailed(
            f"traffic is split {dict(state.weights)}: a canary is running or was interrupted; "
            "finish it, or 'cdlib rollback' it, before a blue/green release"
        )
    idle = groups[1] if live == groups[0] else groups[0]
    return live, idle


@dataclass(kw_only=True)
class BlueGreen(Strategy):
    """Deploy to the idle group, preview-check it, switch, post-check, roll back on failure.

    Extra options:
        rollback_window: seconds after the switch during which the post-release checks
            are repeated; a failure in that window switches traffic back automatically.
        check_interval: seconds between repeats within the window.
        force: release even when the router says this version is already live. Without
            it, releasing the live version again only converges the live group (its
            deploy plays run there, its targets must be healthy) and moves no traffic.
    """

    rollback_window: float = 0.0
    check_interval: float = 5.0
    force: bool = False

    kind = "blue/green"

    def _execute(self, run: ReleaseRun) -> None:
        router = self._router(run)
        groups = list(self.group_patterns())
        with run.step("read router") as st:
            state = router.state()
            live, idle = live_and_idle(state, groups)
            run.rec.previous_group = live
            run.rec.new_group = idle
            run.rec.previous_version = router.tagged_release(live) if live else None
            run.weights(state.weights)
            st.detail = (
                f"live: {live} ({run.rec.previous_version or 'unknown version'}); idle: {idle}"
                if live
                else f"no live group yet; first release goes to {idle}"
            )
        if live is not None and run.rec.previous_version == self.version and not self.force:
            # Releasing what is already live moves no traffic, but it converges the live
            # group like a re-run of any play: after a reboot its apps may be down while
            # the router still sends users to it. An idempotent deploy changes nothing.
            run.rec.new_group = live
            run.deploy(live)
            run.ensure_targets(router, live)
            run.report(
                "already live",
                Status.OK,
                f"{self.version} is already live on {live}; no traffic moved "
                "(force=True releases it again to the other group)",
            )
            run.finish(SUCCEEDED, "already live")
            return
        run.require_whole(idle)
        run.deploy(idle)
        run.ensure_targets(router, idle)
        run.preview(router, idle)
        run.hook("before_shift", idle, state.weights)
        new = self._switch(run, router, live, idle, self.version)
        if new is None:
            return
        run.hook("after_shift", idle, new.weights)
        try:
            self._post_checks(run, idle)
            run.bake()
        except Interrupted:
            raise  # 'cdlib rollback' took over: traffic is its business now
        except Exception as exc:
            if live is None:
                raise ReleaseFailed(
                    f"{exc}; this was the first release, there is no group to switch back to"
                ) from exc
            self._switch_back(run, router, live, str(exc), isinstance(exc, Aborted))
            raise ReleaseFailed(
                f"rolled back to {live}: {exc}", rolled_back=True, aborted=isinstance(exc, Aborted)
            ) from exc
        run.finish(SUCCEEDED)

    def _post_checks(self, run: ReleaseRun, group: str) -> None:
        if self.post_checks is None:
            return
        end = time.monotonic() + self.rollback_window
        title = "post-release checks through the router"
        run.checks(self.post_checks, title, run.router_host(group))
        while time.monotonic() < end:
            run.sleep(min(self.check_interval, max(0.0, end - time.monotonic())))
            run.checks(self.post_checks, title + " (rollback window)", run.router_host(group))

    def _switch(
        self, run: ReleaseRun, router: Router, live: str | None, idle: str, what: str
    ) -> RouterState | None:
        """Move all traffic to ``idle`` (``what`` is released there); None in check mode."""
        with run.step(f"switch traffic {live or '(none)'} -> {idle}", changes=True) as st:
            if run.ctx.check:
                st.detail = f"would switch all traffic to {idle} ({what})"
                return None
            t0 = time.monotonic()
            new = change_traffic(
                self.app,
                run.rec.id,
                router,
                lambda: router.switch(idle),
                expected=None,
                state_dir=self.state_dir,
            )
            took = time.monotonic() - t0
            run.weights(new.weights)
            router.tag_release(idle, self.version)
            st.detail = f"live: {new.live} serving {self.version} (switch took {took:.3f}s)"
        return new

    def _switch_back(
        self, run: ReleaseRun, router: Router, to: str, why: str, aborted: bool
    ) -> None:
        run.hook("on_rollback", to, detail=why)
        with run.step(f"roll back: switch traffic -> {to}", changes=True) as st:
            state = change_traffic(
                self.app,
                run.rec.id,
                router,
                lambda: router.switch(to),
                expected=None,
                state_dir=self.state_dir,
            )
            run.weights(state.weights)
            st.detail = f"live: {state.live}; reason: {why.splitlines()[0]}"
        if aborted:
            run.finish(ABORTED, f"{why}; traffic rolled back to {to}")
        else:
            run.finish(ROLLED_BACK, why)
