"""cdlib: continuous delivery in the Ansible style.

Write plays in Python, run them with ``cdlib run`` or :func:`cdlib.run`::

    from cdlib import Play, tasks

    play = Play("Install the app", hosts="web")
    play.task(tasks.directory("/srv/app", mode="0755"))
"""

from typing import TYPE_CHECKING, Any

from cdlib import tasks
from cdlib._version import __version__ as __version__
from cdlib.connections import (
    Become,
    CommandResult,
    Connection,
    LocalConnection,
    UnreachableError,
)
from cdlib.connections.factory import ConnectionOptions, connection_for
from cdlib.engine.errors import CdlibError, Origin, PlaybookError, PlaybookErrors, TaskFailed
from cdlib.engine.events import CallbackSink, EventSink, JsonLinesSink
from cdlib.engine.play import Handler, Play
from cdlib.engine.playbook import Playbook, load_playbook
from cdlib.engine.results import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HostStats,
    RunResult,
    TaskResult,
)
from cdlib.engine.runner import run
from cdlib.engine.task import HostContext, Plan, Status, Task
from cdlib.inventory import Group, Host, Inventory, InventoryError, PatternError, load_inventory
from cdlib.jinja_sandbox import register_filter, register_test
from cdlib.secret import Secret

if TYPE_CHECKING:
    from cdlib import checks, flags, release
    from cdlib.traffic import (
        ElbV2Router,
        HAProxyRouter,
        HealthReport,
        LocalHAProxy,
        Router,
        RouterInputError,
        RouterState,
        Target,
        TargetGroupMetrics,
        TrafficError,
    )


#: Loaded on first use, so ``cdlib run`` of a plain playbook starts fast.
_LAZY_MODULES = ("checks", "flags", "release", "traffic")
_LAZY_TRAFFIC = (
    "ElbV2Router",
    "TargetGroupMetrics",
    "HAProxyRouter",
    "HealthReport",
    "LocalHAProxy",
    "Router",
    "RouterInputError",
    "RouterState",
    "Target",
    "TrafficError",
)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"cdlib.{name}")
    if name in _LAZY_TRAFFIC:
        return getattr(importlib.import_module("cdlib.traffic"), name)
    raise AttributeError(f"module 'cdlib' has no attribute {name!r}")


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Become",
    "CallbackSink",
    "CdlibError",
    "CommandResult",
    "Connection",
    "ConnectionOptions",
    "ElbV2Router",
    "EventSink",
    "Group",
    "HAProxyRouter",
    "Handler",
    "HealthReport",
    "Host",
    "HostContext",
    "HostStats",
    "Inventory",
    "InventoryError",
    "JsonLinesSink",
    "LocalConnection",
    "LocalHAProxy",
    "Origin",
    "PatternError",
    "Plan",
    "Play",
    "Playbook",
    "PlaybookError",
    "PlaybookErrors",
    "Router",
    "RouterInputError",
    "RouterState",
    "RunResult",
    "Secret",
    "Status",
    "Target",
    "TargetGroupMetrics",
    "Task",
    "TaskFailed",
    "TaskResult",
    "TrafficError",
    "UnreachableError",
    "checks",
    "connection_for",
    "flags",
    "load_inventory",
    "load_playbook",
    "register_filter",
    "register_test",
    "release",
    "run",
    "tasks",
]
