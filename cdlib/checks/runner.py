"""Run one check against one target, with retries, into a :class:`CheckReport`."""

from __future__ import annotations

import time
from typing import Any

from cdlib.checks import probes
from cdlib.checks.base import Check
from cdlib.checks.http import HttpCheck
from cdlib.checks.probes import CONTROL, Target, target_name
from cdlib.checks.report import Attempt, CheckReport, Failure, FailureKind, Outcome, excerpt
from cdlib.checks.retry import Retry
from cdlib.checks.system import CommandCheck, FileCheck, ProcessCheck, ServiceCheck, TcpCheck
from cdlib.connections.base import Connection, TransportError, UnreachableError


def observe(check: Check, target: Target, timeout: float) -> Outcome:
    """Probe once and evaluate: the outcome of a single attempt, never raising for the probe."""
    try:
        obs = _probe(check, target, timeout)
    except UnreachableError as exc:
        return Outcome.fail(FailureKind.CONNECT, f"host unreachable: {exc.reason}")
    except TransportError as exc:
        return Outcome.fail(FailureKind.CONNECT, f"transport error: {exc}")
    if isinstance(obs, Failure):
        return Outcome((obs,))
    return check.evaluate(obs)  # type: ignore[attr-defined, no-any-return]


_KINDS = (HttpCheck, TcpCheck, CommandCheck, ProcessCheck, ServiceCheck, FileCheck)


def _probe(check: Check, target: Target, timeout: float) -> Any:
    if isinstance(check, HttpCheck):
        return probes.probe_http(check, target, timeout)
    if isinstance(check, TcpCheck):
        return probes.probe_tcp(check, target, timeout)
    if isinstance(check, CommandCheck):
        return probes.probe_command(check, target, timeout)
    if isinstance(check, ProcessCheck):
        return probes.probe_process(check, target, timeout)
    if isinstance(check, ServiceCheck):
        return probes.probe_service(check, target, timeout)
    if isinstance(check, FileCheck):
        return probes.probe_file(check, target, timeout)
    raise TypeError(f"no probe for {type(check).__name__}")


def run_check(
    check: Check, target: Target = CONTROL, *, retry: Retry | None = None, label: str = ""
) -> CheckReport:
    """Run ``check`` from ``target`` (the control machine or a host's connection).

    Retries follow ``retry`` or else ``check.retry``. Each attempt's timeout is the
    check's, capped by what is left of the retry policy's total timeout. Failures of the
    check are in the report, not exceptions; a check that cannot be probed at all (for
    example an unknown check type) raises ``TypeError``.
    """
    if not isinstance(check, _KINDS):
        raise TypeError(f"no probe for {type(check).__name__}")
    policy = retry or check.retry

    def attempt(number: int, left: float | None) -> Attempt:
        budget = check.timeout if left is None else max(0.05, min(check.timeout, left))
        start = time.monotonic()
        try:
            outcome = observe(check, target, budget)
        except Exception as exc:  # a probe bug must not hide the other attempts
            outcome = Outcome.fail(
                FailureKind.ERROR, f"probe raised {type(exc).__name__}: {excerpt(str(exc), 200)}"
            )
        return Attempt(number, outcome, time.monotonic() - start)

    done, why = policy.run(attempt)
    return CheckReport(check.label, label or target_name(target), done, why)


def target_for(check: Check, connection: Connection | None) -> Target:
    """Where a suite runs ``check`` for a host: its ``on`` setting, control without a connection."""
    if check.where == "host" and connection is not None:
        return connection
    return CONTROL


__all__ = ["observe", "run_check", "target_for"]
