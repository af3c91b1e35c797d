"""Pure decisions over a :class:`~cdlib.facts.release.ReleaseState`: order, previous, pruning."""

from __future__ import annotations

from collections.abc import Iterable

from cdlib.facts.release import ReleaseState


def install_order(state: ReleaseState) -> list[str]:
    """Installed releases, oldest first.

    The order is that of their first ``install`` record in the release log; releases the
    log does not know (installed by hand, or older than the log tail) come first, by mtime.
    """
    seen: dict[str, int] = {}
    for i, rec in enumerate(state.log):
        v = rec.get("version")
        if rec.get("action") == "install" and isinstance(v, str) and v not in seen:
            seen[v] = i
    unknown = sorted(
        (v for v in state.releases if v not in seen), key=lambda v: (state.releases[v], v)
    )
    known = sorted((v for v in state.releases if v in seen), key=lambda v: seen[v])
    return unknown + known


def previous_good(state: ReleaseState, current: str | None, skip: Iterable[str] = ()) -> str | None:
    """The newest release installed before ``current`` that is not marked bad."""
    order = install_order(state)
    if current in order:
        order = order[: order.index(current)]
    avoid = set(skip) | set(state.bad) | ({current} if current else set())
    for v in reversed(order):
        if v not in avoid:
            return v
    return None


def to_prune(state: ReleaseState, keep: int, new: str, protect: Iterable[str] = ()) -> list[str]:
    """Releases to delete so that ``keep`` remain after installing ``new``, oldest first.

    ``new``, the current release and everything in ``protect`` (the previous release) are
    never deleted, even if that leaves more than ``keep``.
    """
    order = [v for v in install_order(state) if v != new] + [new]
    kept = {new, *protect}
    if state.current_version:
        kept.add(state.current_version)
    excess = len(order) - keep
    out = []
    for v in order:
        if excess <= 0:
            break
        if v in kept:
            continue
        out.append(v)
        excess -= 1
    return out
