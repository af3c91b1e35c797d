"""Rolling: update one group in serial batches, each taken out of the router meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cdlib.checks.suite import Suite, run_suite
from cdlib.engine.play import batches
from cdlib.release.history import SUCCEEDED
from cdlib.release.interrupt import change_traffic
from cdlib.release.strategy import ReleaseFailed, ReleaseRun, Strategy
from cdlib.traffic.base import Router


@dataclass(kw_only=True)
class Rolling(Strategy):
    """Drain a batch of hosts out of ``group``, install, smoke test, put them back.

    Extra options:
        group: the router group to update (default: the first).
        batch: hosts per batch: a count, a percentage (``"25%"``) or a list of those.
        max_fail: hosts that may fail before the release stops; failed hosts stay out
            of the router.
        checks: a suite run against each batch's hosts before they get traffic again.
        drain_timeout: seconds to wait for open sessions to end.

    Each traffic change (drain and deregister, register) happens under the app's traffic
    lock after checking for an interrupt (``cdlib rollback`` or ``cdlib abort`` from
    another shell), as in the other strategies: the release stops before its next
    traffic change, leaving traffic as it is.
    """

    group: str | None = None
    batch: int | str | list[int | str] = 1
    max_fail: int = 0
    checks: Suite | None = None
    drain_timeout: float = 30.0

    kind = "rolling"
    limit_mode = "hosts"

    def _updated_groups(self) -> list[str]:
        return [self.group or next(iter(self.group_patterns()))]

    def _execute(self, run: ReleaseRun) -> None:
        router = self._router(run)
        group = self._updated_groups()[0]
        pattern = self.group_patterns()[group]
        only = run.limited(group)  # with --limit, the limited hosts alone are updated
        hosts = [h for h in run.ctx.inventory.select(pattern) if only is None or h.name in only]
        run.rec.new_group = group
        run.rec.previous_group = group
        failed: list[str] = []
        for i, batch in enumerate(batches([h.name for h in hosts], self.batch), 1):
            names = ",".join(batch)
            targets = self._targets(run.ctx.inventory, names)
            with run.step(
                f"batch {i}: drain {len(batch)} host(s) from {group}", changes=True
            ) as st:
                if run.ctx.check:
                    st.detail = f"would drain {names}"
                else:
                    drain = partial(router.drain, group, targets, timeout=self.drain_timeout)
                    self._change(run, router, drain)
                    self._change(run, router, partial(router.deregister, group, targets))
                    st.detail = names
            try:
                run.deploy(group, limit=names)
                if self.checks is not None and not run.ctx.check:
                    with run.step(f"batch {i}: checks") as st:
                        report = run_suite(
                            self.checks, [h for h in run.preview_hosts(group) if h.name in batch]
                        )
                        if not report.ok:
                            raise ReleaseFailed(report.render())
                        st.detail = "passed"
            except ReleaseFailed as exc:
                failed += batch
                if len(failed) > self.max_fail:
                    raise ReleaseFailed(
                        f"{len(failed)} host(s) failed ({', '.join(failed)}), over max_fail "
                        f"{self.max_fail}; failed hosts are out of the router: {exc}"
                    ) from exc
                continue
            with run.step(f"batch {i}: back into {group}", changes=True) as st:
                if run.ctx.check:
                    st.detail = f"would register {names}"
                    continue
                self._change(run, router, partial(router.register, group, targets))
                health = router.wait_healthy(group, timeout=self.health_timeout)
                if not health.healthy:
                    raise ReleaseFailed(health.describe())
                router.tag_release(group, self.version)
                st.detail = f"{len(targets)} target(s) healthy"
            # An alarm stops the release before its next batch (rolling has no other group
            # to send users back to).
            run.check_alarms(f"after batch {i}")
        run.bake()
        run.finish(SUCCEEDED, f"{len(failed)} host(s) failed" if failed else "")

    def _change(self, run: ReleaseRun, router: Router, apply: Callable[[], object]) -> None:
        """One traffic change, unless the release was interrupted (then :class:`Interrupted`).

        Hosts leave and join one group: no weights of the release's own to compare with.
        """
        change_traffic(self.app, run.rec.id, router, apply, expected=None, state_dir=self.state_dir)
