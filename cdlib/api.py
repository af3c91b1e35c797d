"""The API for code that extends cdlib: tasks, facts, connections, routers, strategies.

Playbooks need only :mod:`cdlib`. Code that adds to cdlib imports from here:

- a task: :class:`Task` with its :class:`Plan` (``plan`` reads and decides, ``apply``
  changes), :class:`HostContext` (the host's connection, facts and variables),
  :func:`option` (option metadata) and :data:`Prediction` (check mode's state after);
- reading state: :class:`Fact`; running commands: :class:`Connection` and the one
  shell quoting helper :func:`q`;
- a playbook item of another kind: :class:`Runnable`, validated with a :class:`Scope`
  and run with a :class:`RunContext`, registered with :func:`register`;
- a router: :class:`Router` and its values; a strategy: :class:`Strategy` built from
  the :class:`ReleaseRun` steps, its router described by a :class:`RouterSpec`.

Names load on first use, like :mod:`cdlib`.
"""

from typing import TYPE_CHECKING

from cdlib._lazy import loader

#: Every public name -> the module it comes from; ``__all__`` is this table's keys.
_EXPORTS = {
    # Tasks and what they run with.
    "Task": "cdlib.engine.task",
    "Plan": "cdlib.engine.task",
    "HostContext": "cdlib.engine.task",
    "Prediction": "cdlib.engine.task",
    "option": "cdlib.engine.task",
    "Fact": "cdlib.facts",
    # Connections.
    "Connection": "cdlib.connections",
    "LocalConnection": "cdlib.connections",
    "CommandResult": "cdlib.connections",
    "Become": "cdlib.connections",
    "TransportError": "cdlib.connections",
    "UnreachableError": "cdlib.connections",
    "ConnectionOptions": "cdlib.connections.factory",
    "connection_for": "cdlib.connections.factory",
    "q": "cdlib.connections.shell",
    # The contract between the engine and a playbook item.
    "Runnable": "cdlib.engine.contract",
    "Scope": "cdlib.engine.contract",
    "RunContext": "cdlib.engine.contract",
    "register": "cdlib.engine.play",
    # Routers.
    "Router": "cdlib.traffic",
    "ElbV2Router": "cdlib.traffic",
    "HAProxyRouter": "cdlib.traffic",
    "LocalHAProxy": "cdlib.traffic",
    "RouterState": "cdlib.traffic",
    "Target": "cdlib.traffic",
    "HealthReport": "cdlib.traffic",
    "TargetGroupMetrics": "cdlib.traffic",
    "RouterInputError": "cdlib.traffic",
    "TrafficError": "cdlib.traffic",
    # The router extension point: a router with the shared parts written, its metrics.
    "BasicRouter": "cdlib.traffic",
    "RouterMetrics": "cdlib.traffic",
    "NginxRouter": "cdlib.traffic",
    # Strategies.
    "Strategy": "cdlib.release",
    "RouterSpec": "cdlib.release",
    "ReleaseRun": "cdlib.release.steps",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = loader(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names for type checkers (a test keeps it equal to _EXPORTS)
    from cdlib.connections import (
        Become as Become,
    )
    from cdlib.connections import (
        CommandResult as CommandResult,
    )
    from cdlib.connections import (
        Connection as Connection,
    )
    from cdlib.connections import (
        LocalConnection as LocalConnection,
    )
    from cdlib.connections import (
        TransportError as TransportError,
    )
    from cdlib.connections import (
        UnreachableError as UnreachableError,
    )
    from cdlib.connections.factory import (
        ConnectionOptions as ConnectionOptions,
    )
    from cdlib.connections.factory import (
        connection_for as connection_for,
    )
    from cdlib.connections.shell import (
        q as q,
    )
    from cdlib.engine.contract import (
        RunContext as RunContext,
    )
    from cdlib.engine.contract import (
        Runnable as Runnable,
    )
    from cdlib.engine.contract import (
        Scope as Scope,
    )
    from cdlib.engine.play import (
        register as register,
    )
    from cdlib.engine.task import (
        HostContext as HostContext,
    )
    from cdlib.engine.task import (
        Plan as Plan,
    )
    from cdlib.engine.task import (
        Prediction as Prediction,
    )
    from cdlib.engine.task import (
        Task as Task,
    )
    from cdlib.engine.task import (
        option as option,
    )
    from cdlib.facts import (
        Fact as Fact,
    )
    from cdlib.release import (
        RouterSpec as RouterSpec,
    )
    from cdlib.release import (
        Strategy as Strategy,
    )
    from cdlib.release.steps import (
        ReleaseRun as ReleaseRun,
    )
    from cdlib.traffic import (
        BasicRouter as BasicRouter,
    )
    from cdlib.traffic import (
        ElbV2Router as ElbV2Router,
    )
    from cdlib.traffic import (
        HAProxyRouter as HAProxyRouter,
    )
    from cdlib.traffic import (
        HealthReport as HealthReport,
    )
    from cdlib.traffic import (
        LocalHAProxy as LocalHAProxy,
    )
    from cdlib.traffic import (
        NginxRouter as NginxRouter,
    )
    from cdlib.traffic import (
        Router as Router,
    )
    from cdlib.traffic import (
        RouterInputError as RouterInputError,
    )
    from cdlib.traffic import (
        RouterMetrics as RouterMetrics,
    )
    from cdlib.traffic import (
        RouterState as RouterState,
    )
    from cdlib.traffic import (
        Target as Target,
    )
    from cdlib.traffic import (
        TargetGroupMetrics as TargetGroupMetrics,
    )
    from cdlib.traffic import (
        TrafficError as TrafficError,
    )
