"""cdlib: continuous delivery in the Ansible style.

Write plays in Python, run them with ``cdlib run`` or :func:`cdlib.run`::

    from cdlib import Play, tasks

    play = Play("Install the app", hosts="web")
    play.task(tasks.directory("/srv/app", mode="0755"))

This package holds what playbook authors and programs that run playbooks use: plays,
tasks, :func:`run`, :class:`Secret`, release strategies, checks, the inventory, results
and errors. What code that extends cdlib uses (tasks of your own, connections, routers,
facts, the run contract) is :mod:`cdlib.api`. Every name loads on first use, so
``cdlib run`` of a plain playbook starts fast.
"""

from typing import TYPE_CHECKING

from cdlib._lazy import loader
from cdlib._version import __version__ as __version__

#: Every public name -> the module it comes from; ``__all__`` is this table's keys.
_EXPORTS = {
    # Playbooks.
    "Play": "cdlib.engine.play",
    "Handler": "cdlib.engine.play",
    "tasks": "cdlib.tasks",
    "Secret": "cdlib.secret",
    "register_filter": "cdlib.jinja_sandbox",
    "register_test": "cdlib.jinja_sandbox",
    # Release strategies and smoke checks.
    "release": "cdlib.release",
    "BlueGreen": "cdlib.release",
    "Canary": "cdlib.release",
    "CanaryStep": "cdlib.release",
    "Rolling": "cdlib.release",
    "FlagCanary": "cdlib.release",
    "checks": "cdlib.checks",
    "flags": "cdlib.flags",
    # The layer below, for code that extends cdlib.
    "api": "cdlib.api",
    # Running a playbook from a program, and what it returns.
    "run": "cdlib.engine.runner",
    "Playbook": "cdlib.engine.playbook",
    "load_playbook": "cdlib.engine.playbook",
    "RunResult": "cdlib.engine.results",
    "TaskResult": "cdlib.engine.results",
    "HostStats": "cdlib.engine.results",
    "Status": "cdlib.engine.task",
    "EventSink": "cdlib.engine.events",
    "CallbackSink": "cdlib.engine.events",
    "JsonLinesSink": "cdlib.engine.events",
    "EXIT_OK": "cdlib.engine.results",
    "EXIT_FAILED": "cdlib.engine.results",
    "EXIT_UNREACHABLE": "cdlib.engine.results",
    "EXIT_BAD_INPUT": "cdlib.engine.results",
    "EXIT_USAGE": "cdlib.engine.results",
    "EXIT_INTERRUPTED": "cdlib.engine.results",
    # Inventories.
    "Inventory": "cdlib.inventory",
    "Host": "cdlib.inventory",
    "Group": "cdlib.inventory",
    "load_inventory": "cdlib.inventory",
    # Errors.
    "CdlibError": "cdlib.errors",
    "PlaybookError": "cdlib.engine.errors",
    "PlaybookErrors": "cdlib.engine.errors",
    "TaskFailed": "cdlib.engine.errors",
    "Origin": "cdlib.engine.errors",
    "InventoryError": "cdlib.inventory",
    "PatternError": "cdlib.inventory",
}

#: Deprecated here: names for extenders, now in :mod:`cdlib.api`. They still resolve
#: (``from cdlib import Task`` works) but are not exported; see CHANGELOG.md.
_MOVED = {
    "Task": "cdlib.engine.task",
    "Plan": "cdlib.engine.task",
    "HostContext": "cdlib.engine.task",
    "Become": "cdlib.connections",
    "CommandResult": "cdlib.connections",
    "Connection": "cdlib.connections",
    "LocalConnection": "cdlib.connections",
    "UnreachableError": "cdlib.connections",
    "ConnectionOptions": "cdlib.connections.factory",
    "connection_for": "cdlib.connections.factory",
    "traffic": "cdlib.traffic",
    "Router": "cdlib.traffic",
    "ElbV2Router": "cdlib.traffic",
    "HAProxyRouter": "cdlib.traffic",
    "LocalHAProxy": "cdlib.traffic",
    "RouterState": "cdlib.traffic",
    "Target": "cdlib.traffic",
    "HealthReport": "cdlib.traffic",
    "GroupMetrics": "cdlib.traffic",
    "RouterInputError": "cdlib.traffic",
    "TrafficError": "cdlib.traffic",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = loader(__name__, _EXPORTS, _MOVED)

if TYPE_CHECKING:  # the same names for type checkers (a test keeps it equal to _EXPORTS)
    from cdlib import api as api
    from cdlib import checks as checks
    from cdlib import flags as flags
    from cdlib import release as release
    from cdlib import tasks as tasks
    from cdlib.engine.errors import (
        Origin as Origin,
    )
    from cdlib.engine.errors import (
        PlaybookError as PlaybookError,
    )
    from cdlib.engine.errors import (
        PlaybookErrors as PlaybookErrors,
    )
    from cdlib.engine.errors import (
        TaskFailed as TaskFailed,
    )
    from cdlib.engine.events import (
        CallbackSink as CallbackSink,
    )
    from cdlib.engine.events import (
        EventSink as EventSink,
    )
    from cdlib.engine.events import (
        JsonLinesSink as JsonLinesSink,
    )
    from cdlib.engine.play import (
        Handler as Handler,
    )
    from cdlib.engine.play import (
        Play as Play,
    )
    from cdlib.engine.playbook import (
        Playbook as Playbook,
    )
    from cdlib.engine.playbook import (
        load_playbook as load_playbook,
    )
    from cdlib.engine.results import (
        EXIT_BAD_INPUT as EXIT_BAD_INPUT,
    )
    from cdlib.engine.results import (
        EXIT_FAILED as EXIT_FAILED,
    )
    from cdlib.engine.results import (
        EXIT_INTERRUPTED as EXIT_INTERRUPTED,
    )
    from cdlib.engine.results import (
        EXIT_OK as EXIT_OK,
    )
    from cdlib.engine.results import (
        EXIT_UNREACHABLE as EXIT_UNREACHABLE,
    )
    from cdlib.engine.results import (
        EXIT_USAGE as EXIT_USAGE,
    )
    from cdlib.engine.results import (
        HostStats as HostStats,
    )
    from cdlib.engine.results import (
        RunResult as RunResult,
    )
    from cdlib.engine.results import (
        TaskResult as TaskResult,
    )
    from cdlib.engine.runner import (
        run as run,
    )
    from cdlib.engine.task import (
        Status as Status,
    )
    from cdlib.errors import (
        CdlibError as CdlibError,
    )
    from cdlib.inventory import (
        Group as Group,
    )
    from cdlib.inventory import (
        Host as Host,
    )
    from cdlib.inventory import (
        Inventory as Inventory,
    )
    from cdlib.inventory import (
        InventoryError as InventoryError,
    )
    from cdlib.inventory import (
        PatternError as PatternError,
    )
    from cdlib.inventory import (
        load_inventory as load_inventory,
    )
    from cdlib.jinja_sandbox import (
        register_filter as register_filter,
    )
    from cdlib.jinja_sandbox import (
        register_test as register_test,
    )
    from cdlib.release import (
        BlueGreen as BlueGreen,
    )
    from cdlib.release import (
        Canary as Canary,
    )
    from cdlib.release import (
        CanaryStep as CanaryStep,
    )
    from cdlib.release import (
        FlagCanary as FlagCanary,
    )
    from cdlib.release import (
        Rolling as Rolling,
    )
    from cdlib.secret import (
        Secret as Secret,
    )
