"""Router specs: serializable descriptions that build a :class:`~cdlib.traffic.base.Router`.

A release records its router's spec in the history, so ``cdlib rollback APP`` can rebuild
the same router later, from another process, and switch traffic back. A spec class
registers itself by its ``kind`` when it is defined (``__init_subclass__``): adding a
router is one module under ``cdlib/traffic/`` with its router and its spec, and
:func:`spec_from_json` finds it there by kind (the modules of this package are imported
when a kind is not yet known).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from cdlib.traffic.base import Router

_REGISTRY: dict[str, type[RouterSpec]] = {}


class RouterSpec:
    """Base class: ``build()`` a router; ``to_json()`` / :func:`spec_from_json` round-trip.

    A subclass is a dataclass with a unique ``kind`` (a ``ClassVar[str]``); defining it
    registers it. Its fields must be JSON values (str, int, float, bool, lists, dicts).
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if not kind:
            return  # an abstract intermediate class registers nothing
        other = _REGISTRY.get(kind)
        if other is not None and (other.__module__, other.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise TypeError(
                f"router kind {kind!r} of {cls.__qualname__} is taken by {other.__qualname__}"
            )
        _REGISTRY[kind] = cls

    def build(self) -> Router:
        """A router for this spec; building changes nothing (starts and writes nothing)."""
        raise NotImplementedError

    def start_needed(self) -> str | None:
        """What a real run must start before it uses this router (``start HAProxy in
        DIR``), or None. Reads only; the base needs nothing."""
        return None

    def start(self) -> None:
        """Start what :meth:`start_needed` names. Only the apply path of a real run (a
        release, a rollback) calls it; status and check mode never do."""

    def prepare_switch(self, to_group: str, *, timeout: float = 600.0) -> str | None:
        """Make ``to_group`` able to take all traffic before ``cdlib rollback`` switches
        to it (scale its instances back); what was done, or None. The base needs nothing."""
        return None

    def describe_groups(self) -> dict[str, str]:
        """What ``cdlib status`` shows about each group beyond traffic (none here)."""
        return {}

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict including ``kind``."""
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> RouterSpec:
        """Rebuild from :meth:`to_json`'s fields (without ``kind``); lists become tuples
        where the field's default is a tuple (JSON has no tuples)."""
        tuples = {
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if isinstance(f.default, tuple)
        }
        return cls(**{k: tuple(v) if k in tuples else v for k, v in fields.items()})


def router_kinds() -> dict[str, type[RouterSpec]]:
    """Every registered spec class by kind (the modules of ``cdlib.traffic`` loaded)."""
    _discover()
    return dict(_REGISTRY)


def _discover() -> None:
    # The sibling modules, found on disk (importing the package here would be a cycle).
    package = __name__.rpartition(".")[0]
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{package}.{mod.name}")


def spec_from_json(data: dict[str, Any]) -> RouterSpec:
    """Rebuild a spec written by :meth:`RouterSpec.to_json`, found by its ``kind``."""
    kind = str(data.get("kind"))
    if kind not in _REGISTRY:
        _discover()
    cls = _REGISTRY.get(kind)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown router kind {data.get('kind')!r} (known: {known})")
    return cls.from_json({k: v for k, v in data.items() if k != "kind"})


__all__ = ["RouterSpec", "router_kinds", "spec_from_json"]
