"""What a release's journal and steps read from the strategy that runs them.

:class:`StrategySpec` is the strategy as seen from below: the module that defines
:class:`~cdlib.release.strategy.Strategy` imports the journal and the steps, so they
name the strategy through this protocol instead of importing it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cdlib.checks.suite import Suite
from cdlib.engine.errors import Origin
from cdlib.engine.play import Play
from cdlib.inventory.model import Inventory
from cdlib.release.hooks import Hooks
from cdlib.release.routers import RouterSpec
from cdlib.traffic.base import Router, Target


class StrategySpec(Protocol):
    """The options and group lookups of the strategy a release runs."""

    @property
    def app(self) -> str:
        """The app released."""
        ...

    @property
    def version(self) -> str:
        """The version released."""
        ...

    @property
    def kind(self) -> str:
        """``bluegreen``, ``canary``, ``rolling`` ..."""
        ...

    @property
    def origin(self) -> Origin:
        """Where the strategy was created in the playbook."""
        ...

    @property
    def state_dir(self) -> str | None:
        """Where the release lock and history live (``None``: the default)."""
        ...

    @property
    def hooks(self) -> Hooks:
        """Hooks fired at each stage."""
        ...

    @property
    def health_timeout(self) -> float:
        """Seconds to wait for new targets to turn healthy."""
        ...

    @property
    def require_released_in(self) -> str | None:
        """The environment this version must have been released in first."""
        ...

    @property
    def router(self) -> RouterSpec | Router | None:
        """How traffic is moved (a spec, recorded in history, or a router)."""
        ...

    @property
    def alarms(self) -> Sequence[str]:
        """CloudWatch alarms watched until the bake time ends."""
        ...

    @property
    def alarm_interval(self) -> float:
        """Least seconds between two reads of the alarms during pauses."""
        ...

    @property
    def bake_time(self) -> float:
        """Seconds to wait after traffic moved, watching the alarms."""
        ...

    @property
    def preview_checks(self) -> Suite | None:
        """Checks run on the new group before any user traffic reaches it."""
        ...

    @property
    def preview_header(self) -> str | None:
        """With it, preview checks go through the load balancer with this header."""
        ...

    @property
    def vars(self) -> Mapping[str, Any]:
        """The strategy's own variables."""
        ...

    def group_patterns(self) -> dict[str, str]:
        """Router target group -> the host pattern deployed into it."""
        ...

    def limited_hosts(self, inv: Inventory, group: str, limit: str | None) -> list[str] | None:
        """The group's hosts inside ``limit`` (``None`` without a limit)."""
        ...

    def _vars(self, group: str) -> dict[str, Any]: ...

    def _deploy_plays(self, group: str, pattern: str) -> list[Play]: ...

    def _targets(self, inv: Inventory, pattern: str) -> list[Target]: ...
