"""The router interface: move user traffic between named target groups.

A *group* is a set of targets (hosts or ports) that carry one release, for
example ``blue`` and ``green``. A :class:`Router` switches all traffic to one
group, or splits it by weight, and reports what it did by reading it back.
Release strategies (blue/green, canary) drive a router; they never talk to a
load balancer directly.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cdlib.errors import EXIT_BAD_INPUT, CdlibError

#: Group names travel into HAProxy server names and AWS tags; keep them plain.
_GROUP_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class TrafficError(CdlibError):
    """Base class of router errors."""


class RouterInputError(TrafficError, ValueError):
    """The caller asked for something invalid (unknown group, weight out of range ...)."""

    exit_code = EXIT_BAD_INPUT


class ReadBackError(TrafficError):
    """A change was accepted but reading it back never showed it."""


class DrainTimeoutError(TrafficError):
    """Targets still had open sessions when the drain timed out."""


@dataclass(frozen=True, order=True)
class Target:
    """One member of a group: a host (or instance id) and the port it serves on."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise RouterInputError(f"target host {self.host!r} is empty or has whitespace")
        if not 0 < self.port < 65536:
            raise RouterInputError(f"target {self.host}: port {self.port} is not in 1..65535")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Target:
        """Build a target from ``host:port``."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise RouterInputError(f"target {text!r} is not of the form host:port")
        return cls(host, int(port))


@dataclass(frozen=True)
class RouterState:
    """What the router reports after reading the load balancer back.

    ``weights`` maps every known group to its weight; ``live`` is the one group
    that receives all traffic, or ``None`` while traffic is split (or nowhere).
    """

    weights: Mapping[str, int]
    live: str | None = None
    sticky: bool = False

    @classmethod
    def from_weights(cls, weights: Mapping[str, int], *, sticky: bool = False) -> RouterState:
        """Derive ``live`` from the weights: the only group with a non-zero weight."""
        nonzero = [g for g, w in weights.items() if w > 0]
        live = nonzero[0] if len(nonzero) == 1 else None
        return cls(weights=dict(weights), live=live, sticky=sticky)

    def share(self, group: str) -> float:
        """Fraction of new requests ``group`` receives (0.0 when nothing has weight)."""
        total = sum(self.weights.values())
        return self.weights.get(group, 0) / total if total else 0.0


@dataclass(frozen=True)
class TargetHealth:
    """Health of one target as the load balancer sees it."""

    target: Target
    healthy: bool
    state: str
    reason: str = ""


@dataclass(frozen=True)
class HealthReport:
    """Result of :meth:`Router.wait_healthy`: every target with its health."""

    group: str
    targets: tuple[TargetHealth, ...]
    timed_out: bool = False

    @property
    def healthy(self) -> bool:
        """True when the group has targets and all of them are healthy."""
        return bool(self.targets) and all(t.healthy for t in self.targets)

    @property
    def unhealthy(self) -> tuple[TargetHealth, ...]:
        """The targets that are not healthy."""
        return tuple(t for t in self.targets if not t.healthy)

    def describe(self) -> str:
        """One line per unhealthy target, for error messages and logs."""
        if not self.targets:
            return f"group {self.group}: no targets registered"
        if self.healthy:
            return f"group {self.group}: all {len(self.targets)} targets healthy"
        lines = [f"group {self.group}: {len(self.unhealthy)}/{len(self.targets)} unhealthy"]
        lines += [f"  {t.target}: {t.state} {t.reason}".rstrip() for t in self.unhealthy]
        return "\n".join(lines)


@dataclass(frozen=True)
class TargetGroupMetrics:
    """Traffic counters of one target group (an HAProxy backend), for canary analysis.

    Counters are cumulative since the load balancer started (HAProxy) or summed
    over the asked period (CloudWatch); compare two readings to get a rate.
    """

    group: str
    requests: int
    errors_5xx: int
    response_time_ms: float | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """5xx responses per request (0.0 without requests)."""
        return self.errors_5xx / self.requests if self.requests else 0.0


#: Deprecated: the old name of :class:`TargetGroupMetrics`.
GroupMetrics = TargetGroupMetrics


# -- optional features: sticky splits and preview routes -------------------------------

#: The header preview requests carry, its value naming the group: ``X-Release-Preview: green``.
DEFAULT_PREVIEW_HEADER = "X-Release-Preview"

#: An HTTP field name (RFC 9110 token); cookie names are tokens too.
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
#: What may reach an HAProxy config or an AWS rule: a token without quote-like signs.
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RouterFeatureError(RouterInputError):
    """The router (or its load balancer's configuration) does not support what was asked."""


def check_http_name(what: str, name: str) -> str:
    """Return ``name`` if it is a plain header or cookie name (letters, digits, ``-_.``,
    at most 64, starting with a letter or digit); else :class:`RouterInputError`.

    The name reaches an HAProxy config and an ELBv2 rule; anything a config could read
    as syntax (spaces, quotes, parentheses, commas) is refused.
    """
    if not isinstance(name, str) or not _SAFE_NAME_RE.match(name) or not _TOKEN_RE.match(name):
        raise RouterInputError(
            f"{what} {name!r} is invalid: use 1-64 of letters, digits, '-', '_' and '.', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class StickySpec:
    """What keeps a client on one group during a split: a cookie or a request header.

    ``cookie`` (or ``header``) names the value the client sends on every request, for
    example a session or user-id cookie the application sets. On HAProxy the value is
    hashed into one of 100 buckets; on nginx ``split_clients`` hashes it; on ELBv2 the
    load balancer sets its own group-stickiness cookie (``AWSALBTG``) for ``seconds``.
    """

    cookie: str | None = None
    header: str | None = None
    seconds: int = 3600

    def __post_init__(self) -> None:
        if (self.cookie is None) == (self.header is None):
            raise RouterInputError("sticky: give exactly one of cookie= or header=")
        if self.cookie is not None:
            check_http_name("sticky cookie", self.cookie)
        if self.header is not None:
            check_http_name("sticky header", self.header)
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int):
            raise RouterInputError(f"sticky seconds {self.seconds!r} is not an integer")
        if not 1 <= self.seconds <= 604800:
            raise RouterInputError(f"sticky seconds {self.seconds} is not in 1..604800")

    @property
    def key(self) -> str:
        """``cookie NAME`` or ``header NAME``, for messages."""
        return f"cookie {self.cookie}" if self.cookie else f"header {self.header}"


@dataclass(frozen=True)
class PreviewRoute:
    """A preview route as read back: requests with ``header: group`` go to ``group``."""

    group: str
    header: str


def check_group_name(group: str) -> str:
    """Return ``group`` or raise :class:`RouterInputError` naming the rule it breaks."""
    if not isinstance(group, str) or not _GROUP_RE.match(group):
        raise RouterInputError(
            f"group name {group!r} is invalid: use 1-32 of a-z, 0-9 and '-', starting with a letter"
        )
    return group


def check_weights(
    weights: Mapping[str, int], known: Iterable[str], *, maximum: int
) -> dict[str, int]:
    """Validate a weight map against the known groups and the backend's range.

    Groups left out get weight 0, so ``{"green": 100}`` means "all to green".
    """
    known_set = set(known)
    if not weights:
        raise RouterInputError("weights are empty: give at least one group a weight")
    out = dict.fromkeys(sorted(known_set), 0)
    for group, weight in weights.items():
        if group not in known_set:
            raise RouterInputError(
                f"weights: unknown group {group!r} (known: {', '.join(sorted(known_set))})"
            )
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise RouterInputError(f"weights: {group}: weight {weight!r} is not an integer")
        if not 0 <= weight <= maximum:
            raise RouterInputError(f"weights: {group}: weight {weight} is not in 0..{maximum}")
        out[group] = weight
    if not any(out.values()):
        raise RouterInputError("weights: all groups have weight 0; traffic would go nowhere")
    return out


class Router(ABC):
    """Moves traffic between target groups on one load balancer.

    Every mutating method reads the change back and only returns once the read
    shows it (or raises :class:`ReadBackError`).
    """

    #: Highest weight one group may get on this load balancer.
    max_weight: int = 100

    def metrics_source(self) -> RouterMetrics | None:
        """The traffic metrics canary analysis reads (see :class:`RouterMetrics`), or
        ``None`` for a router that measures nothing (analysis then fails the step)."""
        return None

    @property
    @abstractmethod
    def groups(self) -> tuple[str, ...]:
        """The names of the target groups this router manages."""

    @abstractmethod
    def state(self) -> RouterState:
        """Read the live group and the weights back from the load balancer."""

    @abstractmethod
    def switch(self, to_group: str) -> RouterState:
        """Send all traffic to ``to_group`` in one change; return the read-back state."""

    @abstractmethod
    def set_weights(self, weights: Mapping[str, int], *, sticky: bool = False) -> RouterState:
        """Split traffic by weight (groups left out get 0); return the read-back state."""

    @abstractmethod
    def register(self, group: str, targets: Iterable[Target]) -> None:
        """Add targets to ``group``; already registered targets are left alone."""

    @abstractmethod
    def deregister(self, group: str, targets: Iterable[Target]) -> None:
        """Remove targets from ``group`` after draining them; unknown targets are no error."""

    @abstractmethod
    def drain(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        """Stop new traffic to ``targets`` and wait (bounded) until their sessions end."""

    @abstractmethod
    def targets(self, group: str) -> tuple[Target, ...]:
        """The targets currently registered in ``group``."""

    @abstractmethod
    def health(self, group: str) -> HealthReport:
        """Read the health of every target in ``group`` once."""

    @abstractmethod
    def wait_healthy(
        self, group: str, *, timeout: float = 60.0, interval: float = 0.5
    ) -> HealthReport:
        """Wait (bounded by ``timeout``) until every target of ``group`` is healthy.

        Returns the last report; ``report.healthy`` is False and ``timed_out``
        True when the time ran out, and ``report.describe()`` says why.
        """

    @abstractmethod
    def tag_release(self, group: str, version: str) -> None:
        """Record on the load balancer which release ``group`` now carries."""

    @abstractmethod
    def tagged_release(self, group: str) -> str | None:
        """The release last recorded with :meth:`tag_release` for ``group``."""

    def release(self, group: str) -> str | None:
        """Deprecated: the old name of :meth:`tagged_release` (it releases nothing)."""
        return self.tagged_release(group)

    # -- optional features: sticky splits and preview routes ---------------------------
    # A router that cannot do these keeps the defaults below, which raise
    # RouterFeatureError (close_preview and preview_route: nothing to close or read).

    def sticky_problem(self, sticky: StickySpec) -> str | None:
        """Why :meth:`set_sticky_weights` with ``sticky`` would be refused now, or ``None``.

        Read-only: a sticky canary asks before it deploys anything, so a router that
        cannot hold the split stops the release with nothing touched. The default: a
        router without sticky weights.
        """
        return f"{type(self).__name__} does not support sticky weights"

    def set_sticky_weights(self, weights: Mapping[str, int], sticky: StickySpec) -> RouterState:
        """Split traffic by weight so that a client keeps its group while weights change.

        The client is recognised by ``sticky`` (a cookie or a header). Raising the
        canary's weight only moves clients onto the canary, never back; a later
        :meth:`switch` (a rollback) sends every client, stuck ones included, to the one
        group. Routers that cannot raise :class:`RouterFeatureError`.
        """
        raise RouterFeatureError(f"{type(self).__name__} does not support sticky weights")

    def open_preview(self, group: str, *, header: str = DEFAULT_PREVIEW_HEADER) -> PreviewRoute:
        """Route requests carrying ``header: <group>`` to ``group`` through the load balancer.

        Requests without the header are routed as before. Read back before returning.
        Routers that cannot raise :class:`RouterFeatureError`.
        """
        raise RouterFeatureError(f"{type(self).__name__} does not support preview routes")

    def close_preview(self) -> bool:
        """Remove any preview route (idempotent); True when one was removed.

        The default has nothing to remove: a router without preview routes never opened one.
        """
        return False

    def preview_route(self) -> PreviewRoute | None:
        """The preview route open now, read from the load balancer (``None``: none)."""
        return None


# ---------------------------------------------------------------------------
# The metrics contract (router extension point): what a router measures and over
# which window. Canary analysis reads this, never the router's concrete class.
# ---------------------------------------------------------------------------

#: ``cumulative``: counters only grow (since the load balancer started); analysis
#: subtracts the pause's first reading. ``windowed``: each reading already sums the
#: traffic of the last ``window`` seconds and is judged on its own.
MetricsSemantics = Literal["cumulative", "windowed"]


@dataclass(frozen=True)
class RouterMetrics:
    """Per-group traffic metrics of one router, and what kind of numbers they are.

    ``read(window)`` returns every group's :class:`TargetGroupMetrics`; ``window`` is
    the seconds since the analysed pause began (a cumulative source ignores it).
    ``measures`` says where the numbers come from, for messages and docs.
    """

    semantics: MetricsSemantics
    read: Callable[[float], Mapping[str, TargetGroupMetrics]]
    measures: str = ""

    def __post_init__(self) -> None:
        if self.semantics not in ("cumulative", "windowed"):
            raise RouterInputError(
                f"metrics semantics {self.semantics!r} is neither 'cumulative' nor 'windowed'"
            )

    @property
    def cumulative(self) -> bool:
        """True when readings are counters to subtract, not windowed sums."""
        return self.semantics == "cumulative"


class BasicRouter(Router):
    """A :class:`Router` with the parts most routers share already written:
    :meth:`switch` is one :meth:`set_weights` call and :meth:`wait_healthy` polls
    :meth:`health`. A new router derives from it and writes the rest (see
    docs/routers.md, "Writing a router")."""

    def switch(self, to_group: str) -> RouterState:
        """All traffic to ``to_group``: ``set_weights({to_group: 100})`` (read back)."""
        return self.set_weights({to_group: 100})

    def wait_healthy(
        self, group: str, *, timeout: float = 60.0, interval: float = 0.5
    ) -> HealthReport:
        """Poll :meth:`health` every ``interval`` seconds, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.health(group)
            if report.healthy:
                return report
            if time.monotonic() >= deadline:
                return HealthReport(group, report.targets, timed_out=True)
            time.sleep(interval)


__all__ = [
    "DEFAULT_PREVIEW_HEADER",
    "BasicRouter",
    "DrainTimeoutError",
    "GroupMetrics",
    "HealthReport",
    "MetricsSemantics",
    "PreviewRoute",
    "ReadBackError",
    "Router",
    "RouterFeatureError",
    "RouterInputError",
    "RouterMetrics",
    "RouterState",
    "StickySpec",
    "Target",
    "TargetGroupMetrics",
    "TargetHealth",
    "TrafficError",
    "check_group_name",
    "check_http_name",
    "check_weights",
]
