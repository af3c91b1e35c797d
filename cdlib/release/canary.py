"""Canary: deploy to the idle group, then move weighted traffic to it in steps.

At each step an analysis compares the canary group's traffic metrics (the router's
RouterMetrics: cumulative counters or a windowed sample) over the step's pause, and may
run smoke checks. A failure sets the canary's weight back to 0 and stops; "no data" is
inconclusive, never a pass.

Before each weight change the router is read back: weights other than those the previous
step set (an operator changed them by hand) stop the release with traffic left as found,
recorded as interrupted; so does ``cdlib rollback`` from another shell
(:mod:`cdlib.release.interrupt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cdlib.checks.suite import Suite
from cdlib.engine.errors import PlaybookError
from cdlib.engine.templating import is_template
from cdlib.release.analysis import Analysis, Measurement, Thresholds
from cdlib.release.bluegreen import live_and_idle
from cdlib.release.gates import Aborted, Gate
from cdlib.release.history import ABORTED, ROLLED_BACK, SUCCEEDED
from cdlib.release.interrupt import change_traffic
from cdlib.release.sampling import Sampler, samples_of
from cdlib.release.strategy import ReleaseFailed, ReleaseRun, Strategy
from cdlib.traffic.base import (
    Router,
    RouterFeatureError,
    RouterInputError,
    RouterMetrics,
    RouterState,
    StickySpec,
    TargetGroupMetrics,
)


@dataclass(frozen=True)
class CanaryStep:
    """One step: send ``weight`` percent to the canary, then wait ``pause`` seconds.

    ``gate`` waits for approval after the weight is set; ``analyse`` judges the step's
    traffic (needs ``pause`` > 0 to have any).
    """

    weight: int
    pause: float = 0.0
    gate: Gate | None = None
    analyse: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.weight, int) or not 0 < self.weight <= 100:
            raise ValueError(f"canary step weight must be 1..100 percent, got {self.weight!r}")
        if self.pause < 0:
            raise ValueError(f"canary step pause cannot be negative, got {self.pause}")


def _steps(raw: Sequence[Any]) -> list[CanaryStep]:
    out = []
    for s in raw:
        if isinstance(s, CanaryStep):
            out.append(s)
        elif isinstance(s, int):
            out.append(CanaryStep(s))
        elif isinstance(s, tuple) and len(s) == 2:
            out.append(CanaryStep(int(s[0]), float(s[1])))
        elif isinstance(s, dict):
            out.append(CanaryStep(**s))
        else:
            raise ValueError(f"canary step {s!r}: use CanaryStep, a weight or (weight, pause)")
    weights = [s.weight for s in out]
    if weights != sorted(weights) or not out:
        raise ValueError(f"canary steps must be non-empty and increasing, got {weights}")
    return out


@dataclass(kw_only=True)
class Canary(Strategy):
    """Weighted steps with analysis, gates and automatic rollback.

    Extra options:
        steps: e.g. ``[CanaryStep(5, pause=120), 25, 50, 100]`` (percent of traffic);
            reaching 100 switches all traffic to the canary group.
        thresholds: :class:`~cdlib.release.analysis.Thresholds` for each analysis.
        analysis_checks: a suite run against the canary hosts at each analysed step.
        on_inconclusive: ``pause`` (wait at ``inconclusive_gate`` for ``cdlib promote``
            or ``cdlib abort``), ``fail`` (roll back) or ``continue``.
        inconclusive_gate: the gate used by ``pause``.
        sample_interval: seconds between metric samples during an analysed pause
            (default 10); a sample past a threshold with at least ``min_requests``
            requests fails the step at once (:mod:`cdlib.release.sampling`).
        sticky: a :class:`~cdlib.traffic.StickySpec` (or ``sticky_cookie="NAME"`` for
            ``StickySpec(cookie=NAME)``): each client, known by that cookie or header, stays
            on one version while the steps raise the canary's share. At rollback the canary
            gets weight 0 in one switch and stuck clients move to the stable group with
            everyone else.
    """

    steps: Sequence[Any] = (CanaryStep(10, 60.0), CanaryStep(50, 60.0), CanaryStep(100))
    thresholds: Thresholds = field(default_factory=Thresholds)
    analysis_checks: Suite | None = None
    on_inconclusive: Literal["pause", "fail", "continue"] = "pause"
    inconclusive_gate: Gate = field(default_factory=lambda: Gate("inconclusive analysis"))
    sample_interval: float = 10.0
    sticky: StickySpec | None = None
    sticky_cookie: str | None = None
    # What the router must read back before the next change: what this run set last.
    _expected: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    kind = "canary"

    def __post_init__(self) -> None:
        super().__post_init__()

        try:
            self.steps = _steps(self.steps)
        except ValueError as exc:
            raise PlaybookError(str(exc), origin=self.origin) from None
        if not self.sample_interval > 0:
            raise PlaybookError(
                f"sample_interval must be a positive number of seconds, got "
                f"{self.sample_interval!r}",
                origin=self.origin,
            )
        if self.sticky_cookie is not None:
            if self.sticky is not None:
                raise PlaybookError("give sticky= or sticky_cookie=, not both", origin=self.origin)
            # A template is checked once rendered (the run's copy comes through here too).
            if not is_template(self.sticky_cookie):
                try:
                    StickySpec(cookie=self.sticky_cookie)
                except RouterInputError as exc:
                    raise PlaybookError(str(exc), origin=self.origin) from None
        if self.sticky is not None and not isinstance(self.sticky, StickySpec):
            raise PlaybookError(
                f"sticky must be a StickySpec, got {type(self.sticky).__name__}",
                origin=self.origin,
            )
        if self.on_inconclusive not in ("pause", "fail", "continue"):
            raise PlaybookError(
                f"on_inconclusive must be pause, fail or continue, got {self.on_inconclusive!r}",
                origin=self.origin,
            )

    def _check_options(self) -> list[PlaybookError]:
        """The base checks, and the sticky cookie's name once rendered."""
        errors = super()._check_options()
        if self.sticky_cookie is not None:
            try:
                StickySpec(cookie=self.sticky_cookie)
            except RouterInputError as exc:
                errors.append(PlaybookError(f"release {self.app}: {exc}", origin=self.origin))
        return errors

    def _sticky(self) -> StickySpec | None:
        """The sticky split of this (rendered) canary: ``sticky``, or ``sticky_cookie``'s."""
        if self.sticky_cookie is not None:
            return StickySpec(cookie=self.sticky_cookie)
        return self.sticky

    def _execute(self, run: ReleaseRun) -> None:
        router = self._router(run)
        groups = list(self.group_patterns())
        with run.step("read router") as st:
            state = router.state()
            stable, canary = live_and_idle(state, groups)
            if stable is None:
                raise ReleaseFailed(
                    "no group is live yet: a canary needs a stable group to compare with; "
                    "make the first release blue/green"
                )
            run.rec.previous_group = stable
            run.rec.new_group = canary
            run.rec.previous_version = router.tagged_release(stable)
            run.weights(state.weights)
            st.detail = f"stable: {stable} ({run.rec.previous_version}); canary: {canary}"
            sticky = self._sticky()
            if sticky is not None:
                # Before the deploy: a router that cannot hold the split stops the
                # release here, with nothing deployed and traffic untouched.
                problem = router.sticky_problem(sticky)
                if problem is not None:
                    raise ReleaseFailed(f"sticky canary: {problem}")
        run.require_whole(canary)
        run.deploy(canary)
        run.ensure_targets(router, canary)
        run.preview(router, canary)
        if not run.ctx.check:
            router.tag_release(canary, self.version)
        self._expected = dict(state.weights)
        run.rec.plan = [f"traffic {s.weight}%" for s in self.steps]
        try:
            for step in self.steps:
                self._step(run, router, step, stable, canary)
            run.bake()
        except (ReleaseFailed, Aborted) as exc:
            if run.ctx.check:
                raise
            self._back_to_stable(run, router, stable, canary, str(exc), isinstance(exc, Aborted))
            raise ReleaseFailed(
                f"canary rolled back to {stable}: {exc}",
                rolled_back=True,
                aborted=isinstance(exc, Aborted),
            ) from exc
        run.finish(SUCCEEDED)

    def _step(
        self, run: ReleaseRun, router: Router, step: CanaryStep, stable: str, canary: str
    ) -> None:
        weights = {canary: step.weight, stable: 100 - step.weight}
        run.hook("before_shift", canary, weights)
        with run.step(f"traffic {step.weight}% -> {canary}", changes=True) as st:
            if run.ctx.check:
                st.detail = f"would set weights {weights}"
                return
            new = change_traffic(
                self.app,
                run.rec.id,
                router,
                lambda: self._shift(router, canary, weights, step.weight),
                expected=self._expected,
                state_dir=self.state_dir,
            )
            self._expected = dict(new.weights)
            run.weights(new.weights)
            st.detail = f"weights {dict(new.weights)}"
        run.hook("after_shift", canary, new.weights)
        if step.gate is not None:
            run.gate(step.gate, f"gate {step.gate.name!r} at {step.weight}%")
        if step.weight == 100:
            return
        if not step.analyse or step.pause <= 0:
            run.sleep(step.pause)
            return
        with run.step(f"analysis at {step.weight}%") as st:
            verdict, why = self._analyse(run, router, canary, step)
            st.detail = f"{verdict}: {why}"
            if verdict == "fail":
                raise ReleaseFailed(f"analysis at {step.weight}% failed: {why}")
        if verdict == "inconclusive":
            self._inconclusive(run, step, why)

    def _shift(
        self, router: Router, canary: str, weights: dict[str, int], percent: int
    ) -> RouterState:
        if percent == 100:
            return router.switch(canary)
        sticky = self._sticky()
        if sticky is None:
            return router.set_weights(weights)
        try:
            return router.set_sticky_weights(weights, sticky)
        except RouterFeatureError as exc:
            # Refused before anything changed: traffic is as the last step left it.
            raise ReleaseFailed(f"sticky canary: {exc}") from exc

    def _analyse(
        self, run: ReleaseRun, router: Router, canary: str, step: CanaryStep
    ) -> tuple[str, str]:
        analysis = Analysis(self.thresholds)
        name = f"analysis at {step.weight}%"

        def record(m: Measurement, elapsed: float, left: float) -> None:
            samples = samples_of(m, self.thresholds, step=name, weights=self._expected)
            run.samples(samples, m, left=left)

        source = router.metrics_source()
        if source is None:
            raise ReleaseFailed(f"router {type(router).__name__} reports no metrics for analysis")
        sampler = Sampler(
            self.thresholds,
            read=lambda elapsed: _group(source, canary, elapsed or self.sample_interval),
            cumulative=source.cumulative,
            sleep=run.sleep,
            record=record,
            interval=self.sample_interval,
        )
        show = {"release": self.app, "step": name, "pause": step.pause}
        run.ctx.progress({"kind": "pause", **show, "left": step.pause, "metrics": {}})
        try:
            for m in sampler.run(step.pause):
                analysis.add(m)
        finally:
            run.ctx.progress({"kind": "pause_end", **show})
        if self.analysis_checks is not None and analysis.verdict()[0] != "fail":
            from cdlib.checks.suite import run_suite

            report = run_suite(self.analysis_checks, run.preview_hosts(canary))
            if not report.ok:
                analysis.add_check_failure(report.render())
        return analysis.verdict()

    def _inconclusive(self, run: ReleaseRun, step: CanaryStep, why: str) -> None:
        if self.on_inconclusive == "continue":
            return
        if self.on_inconclusive == "fail":
            raise ReleaseFailed(f"analysis at {step.weight}% inconclusive ({why}); failing")
        run.gate(
            self.inconclusive_gate,
            f"paused at {step.weight}%: inconclusive ({why}); "
            f"'cdlib promote {self.app}' or 'cdlib abort {self.app}'",
        )

    def _back_to_stable(
        self, run: ReleaseRun, router: Router, stable: str, canary: str, why: str, aborted: bool
    ) -> None:
        run.hook("on_rollback", stable, detail=why)
        with run.step(f"roll back: weight of {canary} -> 0", changes=True) as st:
            # No read-back check: an abort or a failed analysis wants the stable group
            # whatever the weights are; but never after 'cdlib rollback' interrupted us.
            state = change_traffic(
                self.app,
                run.rec.id,
                router,
                lambda: router.switch(stable),
                expected=None,
                state_dir=self.state_dir,
            )
            run.weights(state.weights)
            st.detail = f"live: {state.live}"
        if aborted:
            run.finish(ABORTED, f"{why}; traffic rolled back to {stable}")
        else:
            run.finish(ROLLED_BACK, why)


def _group(source: RouterMetrics, group: str, window: float) -> TargetGroupMetrics:
    metrics = source.read(window)
    if group not in metrics:
        raise ReleaseFailed(f"router metrics ({source.measures or source.semantics}) lack {group}")
    return metrics[group]
