"""Flag canary: release code already deployed by ramping a feature flag in steps.

Instead of moving traffic between groups, each step sends a larger share of *users* to the
new variant through the flag's fractional rule (users keep their bucket between steps),
checks, and on failure ramps the flag back to 0 % at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdlib.checks.suite import Suite, SuiteHost
from cdlib.engine.errors import PlaybookError
from cdlib.release.canary import CanaryStep, _steps
from cdlib.release.gates import Aborted
from cdlib.release.history import ABORTED, FAILED, ROLLED_BACK, SUCCEEDED
from cdlib.release.strategy import ReleaseFailed, ReleaseRun, Strategy


@dataclass(kw_only=True)
class FlagCanary(Strategy):
    """Ramp ``flag`` to ``variant`` through ``steps`` (percent of users), checking each step.

    Extra options:
        flag: the flag key.
        stores: where the flag file lives (:class:`~cdlib.flags.LocalFileStore`,
            :class:`~cdlib.flags.HostFileStore`, :class:`~cdlib.flags.SSMParameterStore`, or a
            list: all are validated before any is written).
        variant: the variant being released (default: the flag's "on" variant).
        steps: e.g. ``[CanaryStep(10, pause=60), 50, 100]``.
        checks: a suite run (on the control machine) after each step's pause; a failure
            ramps the flag back to 0 %.
        audit: an :class:`~cdlib.flags.AuditLog` for every change.
    """

    router: Any = None
    flag: str
    stores: Any
    variant: str | None = None
    steps: Sequence[Any] = (CanaryStep(10, 60.0), CanaryStep(50, 60.0), CanaryStep(100))
    checks: Suite | None = None
    audit: Any = None

    kind = "flag canary"
    needs_router = False
    limit_mode = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            self.steps = _steps(self.steps)
        except ValueError as exc:
            raise PlaybookError(str(exc), origin=self.origin) from None

    def _ramp(self, run: ReleaseRun, percent: int) -> str:
        from cdlib.flags import ramp

        res = ramp(
            self.stores,
            self.flag,
            percent,
            variant=self.variant,
            audit=self.audit,
            dry_run=run.ctx.check,
        )
        return str(getattr(res, "summary", "") or f"{self.flag} at {percent}%")

    def _execute(self, run: ReleaseRun) -> None:
        from cdlib.flags import PartialChangeError

        run.rec.new_group = f"flag:{self.flag}"
        try:
            for step in self.steps:
                assert isinstance(step, CanaryStep)
                with run.step(f"flag {self.flag} -> {step.weight}% of users", changes=True) as st:
                    st.detail = self._ramp(run, step.weight)
                    run.weights({self.flag: step.weight})
                if step.gate is not None:
                    run.gate(step.gate, f"gate {step.gate.name!r} at {step.weight}%")
                run.sleep(0 if run.ctx.check else step.pause)
                if self.checks is not None:
                    run.checks(
                        self.checks,
                        f"checks at {step.weight}%",
                        [SuiteHost("control", None, dict(run.ctx.extra_vars))],
                    )
        except (ReleaseFailed, Aborted) as exc:
            if run.ctx.check:
                raise
            try:
                with run.step(f"roll back: flag {self.flag} -> 0%", changes=True) as st:
                    st.detail = self._ramp(run, 0)
                    run.weights({self.flag: 0})
            except PartialChangeError as partial:
                # The stores that could be reached are at 0 %; name the others.
                run.finish(FAILED, f"{exc}; {partial}")
                raise ReleaseFailed(
                    f"flag {self.flag}: {exc}\nrollback incomplete: {partial}"
                ) from partial
            aborted = isinstance(exc, Aborted)
            if aborted:
                run.finish(ABORTED, f"{exc}; flag {self.flag} ramped back to 0%")
            else:
                run.finish(ROLLED_BACK, str(exc))
            raise ReleaseFailed(
                f"flag {self.flag} ramped back to 0%: {exc}", rolled_back=True, aborted=aborted
            ) from exc
        run.finish(SUCCEEDED)
