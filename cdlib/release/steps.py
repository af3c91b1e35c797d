"""Steps every strategy shares: deploy a group, register its targets, run checks."""

from __future__ import annotations

import contextlib
import dataclasses

from cdlib.checks.http import HttpCheck
from cdlib.checks.suite import Suite, SuiteHost, SuiteReport, run_suite
from cdlib.release.failed import ReleaseFailed
from cdlib.release.history import SUCCEEDED, History
from cdlib.release.journal import Journal
from cdlib.release.options import option_vars
from cdlib.traffic.base import Router, TrafficError


class ReleaseRun(Journal):
    """One execution of a strategy: the :class:`Journal` and the shared steps."""

    #: The router a preview route was opened on, until :meth:`close_preview`.
    preview_router: Router | None = None

    def limited(self, group: str) -> list[str] | None:
        """The group's hosts inside the run's ``--limit`` (``None`` without one)."""
        return self.s.limited_hosts(self.ctx.inventory, group, self.ctx.limit)

    def require_whole(self, group: str) -> None:
        """Refuse, before anything is deployed, to move traffic to ``group`` when the
        run's ``--limit`` would leave it partly deployed."""
        names = self.limited(group)
        every = self.ctx.inventory.select(self.s.group_patterns()[group])
        if names is not None and len(names) != len(every):
            raise ReleaseFailed(
                f"--limit {self.ctx.limit!r} covers {len(names)} of the {len(every)} host(s) "
                f"of {group}, the group this release would move traffic to; nothing was "
                f"deployed and traffic is unchanged (limit to the whole group, or drop --limit)"
            )

    def promotion_check(self) -> None:
        """With ``require_released_in``: the same build (sha256) must have been released
        successfully to that environment first; else stop before deploying."""
        env = self.s.require_released_in
        if env is None:
            return
        sha = self.rec.build_sha256
        with self.step(f"build released in {env} first") as st:
            ok = [
                r
                for r in History(self.s.app, state_dir=self.s.state_dir).all()
                if r.environment == env and r.outcome == SUCCEEDED and r.build_sha256 == sha
            ]
            if not ok:
                raise ReleaseFailed(
                    f"build {self.rec.build} (sha256 {sha}) has no successful release to "
                    f"{env} recorded for {self.s.app}: release it to {env} first; nothing "
                    "was deployed"
                )
            r = ok[-1]
            st.detail = f"released to {env} as {r.version} in {r.id} by {r.user}@{r.machine}"

    def deploy(self, group: str, limit: str | None = None) -> None:
        """Install the version on the group's hosts (plays from ``deploy``); with a run
        ``--limit``, only on the group's hosts inside it."""
        pattern = self.s.group_patterns()[group]
        where = pattern if limit is None else f"{pattern}:&{limit}"
        if limit is None:
            names = self.limited(group)
            if names is not None:
                where = ",".join(names)
                if not names:
                    return
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

    def preview(self, router: Router, group: str) -> None:
        """The preview checks of ``group`` before any user traffic reaches it.

        Without ``preview_header`` they run against the group's hosts directly. With it, a
        preview route is opened first (requests with ``HEADER: group`` go to ``group``
        through the load balancer) and the suite runs once from the control machine, as
        post checks do, each HTTP check sending the header. The route is removed when the
        release ends, whatever the outcome (:meth:`finish`).
        """
        suite = self.s.preview_checks
        header = self.s.preview_header
        if header is None:
            self.checks(suite, f"preview checks on {group}", self.preview_hosts(group))
            return
        with self.step(f"preview route {header}: {group}", changes=True) as st:
            if self.ctx.check:
                st.detail = f"would route requests with {header}: {group} to {group}"
            else:
                self.preview_router = router  # set first: a half-open route is removed too
                try:
                    route = router.open_preview(group, header=header)
                except TrafficError as exc:
                    raise ReleaseFailed(f"{exc}; traffic unchanged") from exc
                st.detail = f"requests with {route.header}: {route.group} go to {route.group}"
        if suite is not None:
            self.checks(
                with_header(suite, header, group),
                f"preview checks on {group} through the router ({header}: {group})",
                self.router_host(group),
            )

    def close_preview(self) -> None:
        """Remove the preview route this run opened (no-op without one)."""
        router, self.preview_router = self.preview_router, None
        if router is None:
            return
        # A failure is reported by the step and must not hide the release's outcome;
        # 'cdlib rollback' removes the route too.
        with contextlib.suppress(Exception), self.step("remove preview route", changes=True) as st:
            st.detail = "removed" if router.close_preview() else "none was open"

    def finish(self, outcome: str, reason: str = "") -> None:
        """Remove the preview route, then record the end of the release."""
        self.close_preview()
        super().finish(outcome, reason)

    def preview_hosts(self, group: str) -> list[SuiteHost]:
        """The group's hosts as suite targets (checked directly, not through the router)."""
        pattern = self.s.group_patterns()[group]
        return [
            SuiteHost(h.name, self.ctx.connection(h), {**h.vars, **self.s._vars(group)})
            for h in self.ctx.inventory.select(pattern)
        ]

    def router_host(self, group: str) -> list[SuiteHost]:
        """One pseudo-host for checks through the load balancer; its vars are those the
        strategy's options were rendered with, and the release's."""
        base = option_vars(self.ctx.inventory, self.s.vars, self.ctx.extra_vars)
        base.pop("lookup", None)
        return [SuiteHost("router", None, {**base, **self.s._vars(group)})]

    # -- CloudWatch alarms and bake time ----------------------------------------
    def start_alarms(self) -> None:
        """With ``alarms``: stop, before anything changes, when one is already in ALARM;
        then watch them at every pause of the release (:mod:`cdlib.release.alarms`)."""
        names = list(self.s.alarms)
        if not names:
            return
        from cdlib.release.alarms import AlarmWatch, cloudwatch_for

        with self.step(f"alarms {', '.join(names)}") as st:
            if self.ctx.check:
                st.detail = "would watch them until the bake time ends"
                return
            watch = AlarmWatch(cloudwatch_for(self.s.router), names, interval=self.s.alarm_interval)
            fired = watch.firing()
            if fired:
                raise ReleaseFailed(
                    f"CloudWatch alarm {', '.join(fired)} already in ALARM before the release; "
                    "nothing was changed"
                )
            self.alarm_watch = watch
            st.detail = "none in ALARM; watched until the bake time ends"

    def check_alarms(self, when: str) -> None:
        """Ask CloudWatch now; :class:`~cdlib.release.alarms.AlarmFired` if one is in ALARM."""
        if self.alarm_watch is not None and not self.ctx.check:
            self.alarm_watch.check(when, force=True)

    def bake(self) -> None:
        """Wait ``bake_time`` seconds after the shift, watching the alarms; an alarm in
        ALARM raises :class:`~cdlib.release.alarms.AlarmFired` (the strategy rolls back)."""
        seconds = self.s.bake_time
        if seconds <= 0 and self.alarm_watch is None:
            return
        names = ", ".join(self.s.alarms) or "no alarms"
        with self.step(f"bake {seconds:g}s watching {names}") as st:
            if self.ctx.check:
                st.detail = f"would wait {seconds:g}s"
                return
            self.alarm_when = "during the bake time"
            self.sleep(seconds)
            self.check_alarms("at the end of the bake time")
            st.detail = "no alarm in ALARM" if self.alarm_watch else f"waited {seconds:g}s"


def with_header(suite: Suite, header: str, value: str) -> Suite:
    """``suite`` with ``header: value`` added to each HTTP check's request headers."""
    checks = tuple(
        dataclasses.replace(c, headers={**c.headers, header: value})
        if isinstance(c, HttpCheck)
        else c
        for c in suite.checks
    )
    return dataclasses.replace(suite, checks=checks)


#: Deprecated: the old name of :class:`ReleaseRun` (``run`` is also the function that
#: runs a playbook, so the class got a name of its own).
Run = ReleaseRun
