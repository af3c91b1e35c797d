"""Hooks: your code at each stage of a release, for notifications and custom checks.

A hook is a callable taking a :class:`HookEvent`. A hook that raises fails the stage:
before traffic moves, the release stops with traffic unchanged; after it moved, the
release rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

STAGES = (
    "before_install",
    "after_install",
    "before_shift",
    "after_shift",
    "on_rollback",
    "on_finish",
)


@dataclass(frozen=True)
class HookEvent:
    """What a hook is told."""

    stage: str
    app: str
    version: str
    group: str | None
    weights: Mapping[str, int] = field(default_factory=dict)
    release_id: str = ""
    detail: str = ""


Hook = Callable[[HookEvent], Any]


@dataclass
class Hooks:
    """Callables run at each stage; each may be ``None``.

    ``on_finish`` runs once at the end with ``detail`` set to the outcome.
    """

    before_install: Hook | None = None
    after_install: Hook | None = None
    before_shift: Hook | None = None
    after_shift: Hook | None = None
    on_rollback: Hook | None = None
    on_finish: Hook | None = None

    def fire(self, event: HookEvent) -> None:
        """Run the hook for ``event.stage`` if one is set."""
        fn = getattr(self, event.stage)
        if fn is not None:
            fn(event)
