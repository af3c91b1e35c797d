"""Smoke checks: HTTP, TCP, command, process, service and file checks with retries.

Use them as a library (:func:`run_check`, :class:`Suite`) or as playbook tasks.
"""

from cdlib.checks.base import Check, Where
from cdlib.checks.http import HttpCheck, HttpResponse
from cdlib.checks.probes import CONTROL, ControlMachine, Target
from cdlib.checks.report import Attempt, CheckReport, Failure, FailureKind, Outcome
from cdlib.checks.retry import Retry
from cdlib.checks.runner import observe, run_check, target_for
from cdlib.checks.suite import Suite, SuiteError, SuiteHost, SuiteReport, run_suite
from cdlib.checks.system import (
    CommandCheck,
    FileCheck,
    ProcessCheck,
    ServiceCheck,
    TcpCheck,
)
from cdlib.checks.yamlsuite import load_suite, parse_suite

__all__ = [
    "CONTROL",
    "Attempt",
    "Check",
    "CheckReport",
    "CommandCheck",
    "ControlMachine",
    "Failure",
    "FailureKind",
    "FileCheck",
    "HttpCheck",
    "HttpResponse",
    "Outcome",
    "ProcessCheck",
    "Retry",
    "ServiceCheck",
    "Suite",
    "SuiteError",
    "SuiteHost",
    "SuiteReport",
    "Target",
    "TcpCheck",
    "Where",
    "load_suite",
    "observe",
    "parse_suite",
    "run_check",
    "run_suite",
    "target_for",
]
