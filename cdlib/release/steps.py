"""Steps every strategy shares: deploy a group, register its targets, run checks."""

from __future__ import annotations

from cdlib.checks.suite import Suite, SuiteHost, SuiteReport, run_suite
from cdlib.release.journal import Journal, ReleaseFailed
from cdlib.traffic.base import Router


class Run(Journal):
    """One execution of a strategy: the :class:`Journal` and the shared steps."""

    def deploy(self, group: str, limit: str | None = None) -> None:
        """Install the version on the group's hosts (plays from ``deploy``)."""
        pattern = self.s.group_patterns()[group]
        where = pattern if limit is None else f"{pattern}:&{limit}"
        plays = self.s._deploy_plays(group, pattern)
        if not plays:
            return
        self.hook("before_install", group)
        with self.step(f"deploy {self.s.version} to {group}", changes=True) as st:
            sub = self.ctx.run_plays(plays, limit=where, extra_vars=self.s._vars(group))
            if not sub.ok:
                bad = sorted(set(sub.failed_hosts) | set(sub.unreachable_hosts))
                raise ReleaseFailed(f"deploy failed on {', '.join(bad)}; traffic unchanged")
            st.detail = f"{len(sub.stats)} host(s), {len(sub.changed())} change(s)"
            st.changed = bool(sub.changed())
        self.hook("after_install", group)

    def ensure_targets(self, router: Router, group: str) -> None:
        """Register the group's hosts in the router and wait until they are healthy."""
        pattern = self.s.group_patterns()[group]
        want = set(self.s._targets(self.ctx.inventory, pattern))
        have = set(router.targets(group))
        diff = bool(want - have or have - want)
        with self.step(f"router targets of {group}", changes=diff) as st:
            if self.ctx.check:
                st.detail = f"would register {len(want - have)}, remove {len(have - want)}"
                return
            if want - have:
                router.register(group, sorted(want - have))
            if have - want:
                router.deregister(group, sorted(have - want))
            report = router.wait_healthy(group, timeout=self.s.health_timeout)
            if not report.healthy:
                raise ReleaseFailed(f"{report.describe()}; traffic unchanged")
            st.detail = f"{len(want)} target(s) healthy"

    def checks(self, suite: Suite | None, title: str, hosts: list[SuiteHost]) -> SuiteReport | None:
        """Run a smoke-check suite; raise :class:`ReleaseFailed` when it fails."""
        if suite is None:
            return None
        with self.step(title) as st:
            if self.ctx.check:
                st.detail = f"would run suite {suite.name} on {len(hosts)} host(s)"
                return None
            report = run_suite(suite, hosts, forks=self.ctx.forks)
            if not report.ok:
                raise ReleaseFailed(f"{title} failed:\n{report.render()}")
            st.detail = f"suite {suite.name} passed on {len(hosts)} target(s)"
            return report

    def preview_hosts(self, group: str) -> list[SuiteHost]:
        """The group's hosts as suite targets (checked directly, not through the router)."""
        pattern = self.s.group_patterns()[group]
        return [
            SuiteHost(h.name, self.ctx.connection(h), {**h.vars, **self.s._vars(group)})
            for h in self.ctx.inventory.select(pattern)
        ]

    def router_host(self, group: str) -> list[SuiteHost]:
        """One pseudo-host for checks through the load balancer."""
        return [SuiteHost("router", None, {**self.ctx.extra_vars, **self.s._vars(group)})]
