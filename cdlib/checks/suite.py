"""Suites: a named group of checks run against many hosts in parallel.

String fields of a suite's checks may be Jinja2 templates (``{{ address }}``,
``{{ inventory_hostname }}``, any host variable); they are rendered per host before
anything runs, so an undefined variable stops the suite up front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from jinja2 import TemplateError

from cdlib.checks.base import Check, is_template
from cdlib.checks.report import CheckReport
from cdlib.checks.runner import run_check, target_for
from cdlib.connections.base import Connection
from cdlib.engine.secrets import Secret
from cdlib.errors import EXIT_BAD_INPUT, CdlibError
from cdlib.jinja_sandbox import SecurityError, refusal, sandboxed_environment

#: Default bound on hosts checked at once.
DEFAULT_FORKS = 10


def _reveal(value: Any) -> Any:
    # A Secret in host vars renders to its real value (a token in a header must work);
    # reports never show request headers, and the engine masks secret values it knows.
    return value.reveal() if isinstance(value, Secret) else value


_ENV = sandboxed_environment(finalize=_reveal)

C = TypeVar("C", bound=Check)


class SuiteError(CdlibError, ValueError):
    """A suite that cannot run: bad definition or a template that does not render."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Suite:
    """A named group of checks; ``source`` is the file it was loaded from, if any."""

    name: str
    checks: tuple[Check, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise SuiteError("a suite needs a name")
        object.__setattr__(self, "checks", tuple(self.checks))


@dataclass(frozen=True)
class SuiteHost:
    """One host a suite runs against: its name, connection and variables for templates."""

    name: str
    connection: Connection | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)

    def template_vars(self) -> dict[str, Any]:
        """The host's vars plus ``inventory_hostname`` and ``address``."""
        address = self.vars.get("ansible_host") or self.vars.get("ansible_ssh_host") or self.name
        return {**self.vars, "inventory_hostname": self.name, "address": str(address)}


@dataclass
class SuiteReport:
    """Every check's report for every host, in the order hosts were given."""

    suite: str
    hosts: dict[str, list[CheckReport]]

    @property
    def ok(self) -> bool:
        """True when every check passed on every host."""
        return all(r.ok for reports in self.hosts.values() for r in reports)

    def host_ok(self, host: str) -> bool:
        """True when every check passed on ``host``."""
        return all(r.ok for r in self.hosts[host])

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts with at least one failed check."""
        return [h for h in self.hosts if not self.host_ok(h)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "suite": self.suite,
            "ok": self.ok,
            "hosts": {h: [r.to_dict() for r in reps] for h, reps in self.hosts.items()},
        }

    def render(self) -> str:
        """A readable report: one block per host."""
        lines = [f"suite {self.suite}: {'PASS' if self.ok else 'FAIL'}"]
        for host, reps in self.hosts.items():
            passed = sum(r.ok for r in reps)
            lines.append(f"{host}: {passed}/{len(reps)} checks passed")
            lines += ["  " + ln for r in reps for ln in r.render().splitlines()]
        return "\n".join(lines)


#: Renders one template string; the engine passes its own (secrets, error locations).
Render = Callable[[str], str]


def _render_value(value: Any, render: Render) -> Any:
    if isinstance(value, str) and is_template(value):
        return render(value)
    if isinstance(value, Mapping):
        return {_render_value(k, render): _render_value(v, render) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_render_value(v, render) for v in value)
    return value


def _default_render(text: str, variables: Mapping[str, Any]) -> str:
    return _ENV.from_string(text).render(variables)


def render_check(check: C, variables: Mapping[str, Any], render: Render | None = None) -> C:
    """``check`` with every templated string field rendered; validation runs again.

    ``render`` renders one string (default: a sandboxed Jinja2 with StrictUndefined
    and ``variables``).
    """
    if render is None:
        render = partial(_default_render, variables=variables)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(check):
        if f.name in ("retry", "_"):
            continue
        old = getattr(check, f.name)
        new = _render_value(old, render)
        if new != old:
            changes[f.name] = new
    return dataclasses.replace(check, **changes) if changes else check


def prepare(suite: Suite, hosts: Sequence[SuiteHost]) -> dict[str, list[Check]]:
    """Render the suite's checks for each host; :class:`SuiteError` lists every failure."""
    errors: list[str] = []
    out: dict[str, list[Check]] = {}
    for h in hosts:
        variables = h.template_vars()
        rendered: list[Check] = []
        for i, c in enumerate(suite.checks):
            try:
                rendered.append(render_check(c, variables))
            except (TemplateError, ValueError, TypeError) as exc:
                where = f"{suite.source}: " if suite.source else ""
                why = refusal(exc) if isinstance(exc, SecurityError) else str(exc)
                errors.append(
                    f"{where}suite {suite.name}, checks[{i}] ({c.label}), {h.name}: {why}"
                )
        out[h.name] = rendered
    if errors:
        raise SuiteError("\n".join(errors))
    return out


def run_suite(
    suite: Suite, hosts: Sequence[SuiteHost], *, forks: int = DEFAULT_FORKS
) -> SuiteReport:
    """Run every check of ``suite`` on every host, hosts in parallel (at most ``forks``).

    Checks of one host run in order; each runs where its ``on`` says (the control machine
    or the host's connection). Templates are rendered for all hosts first, so a bad one
    raises :class:`SuiteError` before any check runs.
    """
    if forks < 1:
        raise SuiteError(f"forks must be >= 1, got {forks}")
    names = [h.name for h in hosts]
    if len(set(names)) != len(names):
        raise SuiteError(f"suite {suite.name}: duplicate host names in {names}")
    prepared = prepare(suite, hosts)

    def one(h: SuiteHost) -> list[CheckReport]:
        return [run_check(c, target_for(c, h.connection), label=h.name) for c in prepared[h.name]]

    if not hosts:
        return SuiteReport(suite.name, {})
    with ThreadPoolExecutor(max_workers=min(forks, len(hosts))) as pool:
        results = list(pool.map(one, hosts))
    return SuiteReport(suite.name, dict(zip(names, results, strict=True)))


__all__ = [
    "DEFAULT_FORKS",
    "Suite",
    "SuiteError",
    "SuiteHost",
    "SuiteReport",
    "prepare",
    "render_check",
    "run_suite",
]
