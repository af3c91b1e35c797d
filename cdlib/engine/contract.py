"""The contract between the engine and the things a playbook runs.

A playbook is an ordered list of :class:`Runnable` items: plays, and anything else that
implements the protocol (release strategies do). The engine validates every item
before it runs any, then executes them in order, each with a :class:`RunContext` that
runs plays on the run's own thread pool, connections, event sinks and redactor. The
engine knows nothing else about an item, so higher layers (release) plug in here
without the engine importing them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from cdlib.connections.base import Connection
from cdlib.engine.errors import Origin, PlaybookError
from cdlib.engine.results import RunResult, TaskResult
from cdlib.engine.secrets import Redactor
from cdlib.inventory.model import Host, Inventory

#: The play type. :class:`Scope` and :class:`RunContext` are generic in it because
#: :mod:`cdlib.engine.play` implements this contract and so cannot be imported here; the
#: engine's own are ``Scope[Play]`` and ``RunContext[Play]``.
Play = TypeVar("Play", contravariant=True)


class Scope(Protocol[Play]):
    """What an item sees while it is validated; nothing here touches a host."""

    @property
    def inventory(self) -> Inventory:
        """The run's inventory (extra vars merged into a copy of each host)."""
        ...

    @property
    def extra_vars(self) -> Mapping[str, object]:
        """The run's extra vars (``-e``)."""
        ...

    @property
    def limit(self) -> str | None:
        """The run's ``--limit`` pattern, if any."""
        ...

    @property
    def metadata(self) -> Mapping[str, str]:
        """Free-form labels the caller gave the run (``cdlib run --meta k=v``)."""
        ...

    def prepare(self, play: Play) -> list[PlaybookError]:
        """Validate ``play`` and render its tasks for every selected host, keeping the
        rendering for :meth:`RunContext.run_play`; return the errors found."""
        ...

    def check_plays(
        self, plays: Sequence[Play], *, limit: str | None, extra_vars: Mapping[str, object]
    ) -> list[PlaybookError]:
        """Validate plays that an item will run later through :meth:`RunContext.run_plays`."""
        ...


class RunContext(Protocol[Play]):
    """What an item gets while it runs: the modes, the hosts and where results go."""

    @property
    def inventory(self) -> Inventory:
        """The run's inventory."""
        ...

    @property
    def check(self) -> bool:
        """Check mode: predict changes, make none."""
        ...

    @property
    def diff(self) -> bool:
        """Show content diffs."""
        ...

    @property
    def forks(self) -> int:
        """How many hosts the run works on at once."""
        ...

    @property
    def extra_vars(self) -> Mapping[str, object]:
        """The run's extra vars (``-e``)."""
        ...

    @property
    def limit(self) -> str | None:
        """The run's ``--limit`` pattern, if any."""
        ...

    @property
    def metadata(self) -> Mapping[str, str]:
        """Free-form labels the caller gave the run (``cdlib run --meta k=v``)."""
        ...

    @property
    def redact(self) -> Redactor:
        """The run's redactor; it masks every secret the run knows."""
        ...

    def connection(self, host: Host) -> Connection:
        """The run's connection to ``host`` (opened once, shared by every item)."""
        ...

    def start(self, label: str, hosts: list[str]) -> None:
        """Announce an item (a ``play_start`` event)."""
        ...

    def emit(self, result: TaskResult) -> None:
        """Record a result line and send it to the run's sinks."""
        ...

    def progress(self, event: Mapping[str, object]) -> None:
        """Tell the sinks that want it how a long step goes (a canary pause's
        countdown and latest metrics); not a result, not counted, not in JSON Lines."""
        ...

    def run_play(self, play: Play) -> None:
        """Run a play prepared by :meth:`Scope.prepare`."""
        ...

    def run_plays(
        self,
        plays: Sequence[Play],
        *,
        limit: str | None = None,
        extra_vars: Mapping[str, object] | None = None,
    ) -> RunResult:
        """Validate then run ``plays`` inside this run (same pool, connections, sinks and
        redactor); their results count in this run too. Returns theirs alone."""
        ...


@runtime_checkable
class Runnable(Protocol):
    """A thing a playbook runs: a :class:`~cdlib.engine.play.Play`, a release strategy."""

    @property
    def label(self) -> str:
        """Name shown in output."""
        ...

    @property
    def origin(self) -> Origin:
        """Where the item was defined (file and line), for errors."""
        ...

    def validate(self, scope: Scope[Any]) -> list[PlaybookError]:
        """Every error found before anything runs (all items are validated first)."""
        ...

    def execute(self, ctx: RunContext[Any]) -> None:
        """Run; failures become result lines, not exceptions."""
        ...
