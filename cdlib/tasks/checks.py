"""The ``smoke`` task: run checks or a suite on each host; ok if they pass, failed if not.

The report (every attempt and the final reason) is the task's message, so it shows in
the console, the JSON events and the recap's failure count.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cdlib.checks.base import Check
from cdlib.checks.report import CheckReport
from cdlib.checks.runner import run_check, target_for
from cdlib.checks.suite import Suite, SuiteError, render_check
from cdlib.checks.yamlsuite import load_suite
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Task, Then
from cdlib.engine.templating import Templar


@dataclass
class Smoke(Task[Plan]):
    """Run smoke checks on each host of the play.

    Options:
        check: one check (``HttpCheck(...)``, ``TcpCheck(...)`` ...) or a list of them.
        suite: a :class:`~cdlib.checks.Suite`, or the path of a YAML suite file (relative
            to the playbook). A file is loaded and validated when the task is created, so
            a bad suite stops the playbook before any host is touched, naming file and line.
        in_check_mode: also run in check mode (default: report "not run", since what a
            smoke test checks usually does not exist until the deploy has run).

    String options of the checks are jinja2 templates rendered per host with the host's
    variables plus ``address`` (``ansible_host`` or the host name). Each check runs where
    its ``on`` says: ``control`` (HTTP and TCP by default) or the ``host`` through its
    connection (command, process, service, file by default). Checks of one host run in
    order; hosts run in parallel as the play's ``forks`` allow.

    Example:
        ```python
        play.task(tasks.smoke(HttpCheck(url="http://{{ address }}:8080/health")))
        ```
    """

    check: Check | list[Check] | None = None
    suite: Suite | str | None = None
    in_check_mode: bool = False

    kind = "smoke"

    _checks: tuple[Check, ...] = field(default=(), init=False, repr=False)
    _suite_name: str = field(default="", init=False, repr=False)

    def validate(self) -> None:
        """Exactly one of ``check`` / ``suite``; a suite file is loaded and validated now."""
        if (self.check is None) == (self.suite is None):
            raise self.error("give exactly one of the options 'check' and 'suite'")
        if isinstance(self.suite, str):
            try:
                loaded = load_suite(self._suite_path(self.suite))
            except SuiteError as exc:
                raise self.error(str(exc)) from None
            self._set(loaded.checks, loaded.name)
        elif isinstance(self.suite, Suite):
            self._set(self.suite.checks, self.suite.name)
        else:
            checks = self.check if isinstance(self.check, list) else [self.check]
            if not checks:
                raise self.error("option 'check' is an empty list")
            self._set(tuple(c for c in checks if c is not None), "")

    def _suite_path(self, name: str) -> Path:
        p = Path(name)
        if p.is_absolute():
            return p
        return Path(self.origin.file).parent / p

    def _set(self, checks: tuple[Check, ...], suite_name: str) -> None:
        object.__setattr__(self, "_checks", tuple(checks))
        object.__setattr__(self, "_suite_name", suite_name)

    def describe(self) -> str:
        """``smoke suite <name>`` or ``smoke <check>``."""
        if self._suite_name:
            return f"smoke suite {self._suite_name}"
        if isinstance(self.suite, str):
            return f"smoke suite {self.suite}"
        return "smoke " + ", ".join(c.label for c in self._checks)

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render every check for this host now, so a bad template fails before any host."""
        address = variables.get("ansible_host") or variables.get("inventory_hostname", "")
        tvars = {**variables, "address": str(address)}
        rendered: list[Check] = []
        for i, c in enumerate(self._checks):
            what = f"check {c.label!r}"

            def render(text: str, what: str = what) -> str:
                return templar.render_string(text, tvars, what=what)

            try:
                rendered.append(render_check(c, tvars, render))
            except (ValueError, TypeError) as exc:
                raise self.error(f"checks[{i}] ({c.label}): {exc}") from None
        out = copy.copy(self)
        out._set(tuple(rendered), self._suite_name)
        return out

    def plan(self, ctx: HostContext) -> Plan:
        """Run the checks (they only read); failing checks fail the task with the report."""
        if ctx.check and not self.in_check_mode:
            return Plan(ok_msg="smoke checks not run in check mode", then=Then.SKIP)
        reports = [run_check(c, target_for(c, ctx.conn), label=ctx.host) for c in self._checks]
        text = render_reports(reports)
        if not all(r.ok for r in reports):
            raise TaskFailed(text)
        return Plan(ok_msg=text, then=Then.DONE)


def render_reports(reports: list[CheckReport]) -> str:
    """The reports of one host as one message: a summary line, then each report."""
    passed = sum(r.ok for r in reports)
    head = f"{passed}/{len(reports)} checks passed"
    return "\n".join([head, *(r.render() for r in reports)])


#: Lowercase alias, as playbooks usually spell tasks.
smoke = Smoke

__all__ = ["Smoke", "render_reports", "smoke"]
