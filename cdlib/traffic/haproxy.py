"""The HAProxy router: groups of servers in one backend, driven at runtime.

All servers of all groups live in one backend; a group's weight is set on each
of its servers with ``set server <backend>/<server> weight N``, so a switch or
a weight step never reloads HAProxy and never drops a connection. Servers are
named ``<group>_<host>:<port>`` so the state can be read back from HAProxy
alone. After every change the router re-renders the config file and writes
the server-state file, so a restart comes back in the same state.

With a route map (``HAProxySite.route_map_dir``; found by its name in ``show map``)
each group also has a backend of its own, ``<backend>_<group>``, and the frontend
picks the backend from the map's ``live`` key. A switch is then ONE runtime command,
``set map``: every request after it goes to the new group, none before it does, so a
client never gets the new version and then the old one again. Weights between groups
(a canary) are set on the weighted backend first, then the map points to it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cdlib.atomicfile import write_atomic
from cdlib.traffic.base import (
    DEFAULT_PREVIEW_HEADER,
    DrainTimeoutError,
    HealthReport,
    PreviewRoute,
    ReadBackError,
    Router,
    RouterFeatureError,
    RouterInputError,
    RouterMetrics,
    RouterState,
    StickySpec,
    Target,
    TargetGroupMetrics,
    TargetHealth,
    check_group_name,
    check_http_name,
    check_weights,
)
from cdlib.traffic.haproxy_config import (
    GROUP_BACKEND_WEIGHT,
    HAProxySite,
    ServerEntry,
    group_backend,
    render_config,
)
from cdlib.traffic.haproxy_parse import (
    ServerStat,
    ServerState,
    server_name,
    server_stats,
    split_server_name,
)
from cdlib.traffic.haproxy_runtime import RuntimeAPIError, RuntimeClient

#: Weight a group gets from :meth:`HAProxyRouter.switch`.
FULL_WEIGHT = 100
#: The route map's key whose value names the backend in use.
ROUTE_KEY = "live"
#: Route map keys of a sticky split: the canary's backend (its presence turns the sticky
#: rules on), the stable group's backend, and the canary's percent of the 100 buckets.
STICKY_CANARY = "sticky.canary"
STICKY_STABLE = "sticky.stable"
STICKY_WEIGHT = "sticky.weight"
#: Route map keys ``preview.<group>`` name the backend preview requests go to.
PREVIEW_PREFIX = "preview."


def _pkey(group: str) -> str:
    return PREVIEW_PREFIX + group


@dataclass(frozen=True)
class HAProxyPersistence:
    """Where runtime changes are written so that they survive a restart.

    ``site`` is the configuration without servers; the router fills the
    servers in from what HAProxy reports and writes ``config_path``. When the
    site has a ``state_file``, ``show servers state`` is saved there too, which
    ``load-server-state-from-file global`` restores (health and drain state).
    ``releases_path`` keeps the release tags (JSON).
    """

    site: HAProxySite
    config_path: str
    releases_path: str | None = None


class HAProxyRouter(Router):
    """A :class:`Router` over HAProxy's runtime API.

    ``runtime`` talks to the admin socket; ``backend`` holds the servers of all
    ``groups``. ``persistence`` (optional) makes changes survive restarts.
    """

    max_weight = 256

    def __init__(
        self,
        runtime: RuntimeClient,
        *,
        groups: Iterable[str] = ("blue", "green"),
        backend: str = "app",
        persistence: HAProxyPersistence | None = None,
        check_inter_ms: int = 1000,
        check_fall: int = 2,
        check_rise: int = 2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        preview_header: str | None = DEFAULT_PREVIEW_HEADER,
        sticky_cookie: str | None = None,
        sticky_header: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.backend = backend
        self._groups = tuple(check_group_name(g) for g in groups)
        if len(set(self._groups)) != len(self._groups) or not self._groups:
            raise RouterInputError(f"HAProxy router: groups {self._groups} empty or duplicated")
        self.persistence = persistence
        self._check = f"check inter {check_inter_ms}ms fall {check_fall} rise {check_rise}"
        self._clock = clock
        self._sleep = sleep
        self._releases: dict[str, dict[str, str]] = self._load_releases()
        self._route_map: str | None = None
        self._route_known = False
        # What the frontend's rules key on: the persisted site says; without one, the
        # caller does (it must match the config HAProxy runs).
        site = persistence.site if persistence else None
        self._features = site or HAProxySite(
            bind="127.0.0.1:1",
            admin_socket="/unused",
            groups=self._groups,
            preview_header=preview_header,
            sticky_cookie=sticky_cookie,
            sticky_header=sticky_header,
        )

    # -- reading ---------------------------------------------------------------
    @property
    def groups(self) -> tuple[str, ...]:
        """The groups this router manages."""
        return self._groups

    def _servers(self) -> list[tuple[str, Target, ServerState]]:
        """cdlib-named servers of the backend: (group, target, state)."""
        out = []
        for st in self.runtime.show_servers_state(self.backend):
            parsed = split_server_name(st.name)
            if parsed is not None and parsed[0] in self._groups:
                out.append((parsed[0], parsed[1], st))
        return out

    def _counts(self, servers: list[tuple[str, Target, ServerState]]) -> dict[str, int]:
        """Active servers (not in drain or maintenance) per group."""
        counts = dict.fromkeys(self._groups, 0)
        for group, _target, st in servers:
            if not st.in_maint and not st.draining:
                counts[group] += 1
        return counts

    def _shares(self, servers: list[tuple[str, Target, ServerState]]) -> dict[str, int]:
        """Each group's share of the configured traffic, in percent (sums to 100)."""
        totals = dict.fromkeys(self._groups, 0)
        for group, _target, st in servers:
            if not st.in_maint and not st.draining:
                totals[group] += st.uweight
        return _percent(totals)

    def state(self) -> RouterState:
        """Each group's share of traffic in percent, from the servers' weights.

        A group's share is the sum of its active servers' weights over the sum of
        all of them; servers in drain or maintenance count 0. HAProxy stores
        per-server weights only, so ``{"blue": 1, "green": 3}`` reads back as
        ``{"blue": 25, "green": 75}``.
        """
        routed = self._routed_group()
        if routed is not None:
            # All traffic goes to the group's own backend: 100 %, or 0 when it has no
            # active server left (drained), as the weighted backend would say.
            servers = self._servers()
            full = 100 if self._counts(servers)[routed] else 0
            return RouterState.from_weights({g: full if g == routed else 0 for g in self._groups})
        sticky = self.route_map() is not None and STICKY_CANARY in self._map()
        return RouterState.from_weights(self._shares(self._servers()), sticky=sticky)

    # -- the route map ---------------------------------------------------------
    def route_map(self) -> str | None:
        """The route map file HAProxy loaded for this backend, or ``None`` (no per-group
        backends: a switch sets server weights)."""
        if not self._route_known:
            from cdlib.traffic.haproxy_config import route_map_path

            wanted = route_map_path("", self.backend).lstrip("/")
            for line in self.runtime.raw("show map").splitlines():
                start, end = line.find("("), line.find(")")
                path = line[start + 1 : end] if 0 <= start < end else ""
                if path.rsplit("/", 1)[-1] == wanted:
                    self._route_map = path
            self._route_known = True
        return self._route_map

    def _map(self) -> dict[str, str]:
        """The route map's entries as HAProxy holds them now (empty without a map)."""
        path = self.route_map()
        if path is None:
            return {}
        out = {}
        for line in self.runtime.raw(f"show map {path}").splitlines():
            parts = line.split()
            if len(parts) == 3:
                out[parts[1]] = parts[2]
        return out

    def _route(self) -> str | None:
        """The backend the route map sends traffic to (``None``: the weighted one)."""
        return self._map().get(ROUTE_KEY)

    def _map_put(self, key: str, value: str) -> None:
        """Add or replace one entry: one runtime command, atomic for HAProxy."""
        path = self.route_map()
        assert path is not None
        current = self._map().get(key)
        if current == value:
            return
        verb = "add" if current is None else "set"
        self.runtime.execute(f"{verb} map {path} {key} {value}")

    def _map_del(self, *keys: str) -> bool:
        """Delete entries in the order given; True when one was there."""
        path = self.route_map()
        if path is None:
            return False
        present = self._map()
        done = False
        for key in keys:
            if key in present:
                self.runtime.execute(f"del map {path} {key}")
                done = True
        return done

    def _routed_group(self) -> str | None:
        route = self._route()
        for g in self._groups:
            if route == group_backend(self.backend, g):
                return g
        return None

    def _set_route(self, backend: str) -> None:
        """Point the frontend at ``backend``: one runtime command, atomic for HAProxy."""
        self._map_put(ROUTE_KEY, backend)

    def _group_servers(self, group: str) -> list[ServerState]:
        return [
            st
            for st in self.runtime.show_servers_state(group_backend(self.backend, group))
            if split_server_name(st.name) is not None
        ]

    def _wait_group_backend(self, group: str, timeout: float = 30.0) -> None:
        """Before routing to ``group``'s backend: its active servers have weight and have
        passed a check there (they are checked apart from the weighted backend's)."""
        be = group_backend(self.backend, group)
        for st in self._group_servers(group):
            if not st.in_maint and not st.draining and st.uweight != GROUP_BACKEND_WEIGHT:
                self.runtime.execute(f"set server {be}/{st.name} weight {GROUP_BACKEND_WEIGHT}")
        deadline = self._clock() + timeout
        while True:
            active = {st.name for st in self._group_servers(group) if not st.in_maint}
            stats = [s for s in self.runtime.show_stat(be) if s.name in active]
            if stats and any(s.up and s.check_passed for s in stats):
                return
            if self._clock() >= deadline:
                raise ReadBackError(
                    f"{be}: no server passed its health check within {timeout:g}s; "
                    "traffic not switched"
                )
            self._sleep(0.1)

    def targets(self, group: str) -> tuple[Target, ...]:
        """Targets registered in ``group`` (including draining ones)."""
        self._known(group)
        return tuple(sorted(t for g, t, _ in self._servers() if g == group))

    def health(self, group: str) -> HealthReport:
        """One reading of ``show stat`` for the servers of ``group``."""
        self._known(group)
        report = []
        for stat in self.runtime.show_stat(self.backend):
            parsed = split_server_name(stat.name)
            if parsed is None or parsed[0] != group:
                continue
            healthy = stat.up and stat.check_passed
            report.append(TargetHealth(parsed[1], healthy, stat.status, stat.check_reason))
        return HealthReport(group, tuple(sorted(report, key=lambda h: h.target)))

    def wait_healthy(
        self, group: str, *, timeout: float = 60.0, interval: float = 0.5
    ) -> HealthReport:
        """Poll ``show stat`` until every server of ``group`` passed its check, bounded."""
        deadline = self._clock() + timeout
        while True:
            report = self.health(group)
            if report.healthy:
                return report
            if self._clock() >= deadline:
                return HealthReport(group, report.targets, timed_out=True)
            self._sleep(interval)

    def metrics_source(self) -> RouterMetrics:
        """Cumulative counters from ``show stat`` (:meth:`metrics`); the window is unused."""
        return RouterMetrics("cumulative", lambda _window: self.metrics(), "HAProxy show stat")

    def metrics(self) -> dict[str, TargetGroupMetrics]:
        """Per-group counters from ``show stat``: responses, 5xx, mean response time.

        Counters are cumulative since HAProxy started; a canary analysis takes
        two readings and compares the differences.
        """
        acc: dict[str, list[int]] = {g: [0, 0] for g in self._groups}
        times: dict[str, list[int]] = {g: [] for g in self._groups}
        for stat in self._all_stats():
            parsed = split_server_name(stat.name)
            if parsed is None or parsed[0] not in acc:
                continue
            acc[parsed[0]][0] += stat.responses
            acc[parsed[0]][1] += stat.hrsp_5xx
            if stat.rtime_ms is not None and stat.responses:
                times[parsed[0]].append(stat.rtime_ms)
        return {
            g: TargetGroupMetrics(
                group=g,
                requests=acc[g][0],
                errors_5xx=acc[g][1],
                response_time_ms=(sum(times[g]) / len(times[g])) if times[g] else None,
            )
            for g in self._groups
        }

    def _all_stats(self) -> list[ServerStat]:
        """``show stat`` rows of the weighted backend and, with a route map, the groups'."""
        if self.route_map() is None:
            return self.runtime.show_stat(self.backend)
        text = self.runtime.raw("show stat")
        out = server_stats(text, self.backend)
        for g in self._groups:
            out += server_stats(text, group_backend(self.backend, g))
        return out

    # -- changing --------------------------------------------------------------
    def switch(self, to_group: str) -> RouterState:
        """All traffic to ``to_group``.

        With a route map: one ``set map`` sends every new request to the group's own
        backend at once (then the weighted backend is set to match, unused). Without:
        raise its weights first, then zero the others.
        """
        self._known(to_group)
        return self.set_weights({to_group: FULL_WEIGHT})

    def set_weights(self, weights: Mapping[str, int], *, sticky: bool = False) -> RouterState:
        """Split traffic by group share; each server gets its group's share over its size.

        Groups of different sizes get the asked share of requests, not of servers.
        Raises before changing anything when a group that should get traffic has
        no server that is up. Returns the read-back state (shares in percent).
        """
        if sticky:
            f = self._features
            spec = (
                StickySpec(cookie=f.sticky_cookie, header=f.sticky_header)
                if (f.sticky_cookie or f.sticky_header)
                else None
            )
            if spec is None:
                raise RouterFeatureError(self._no_sticky_rules())
            return self.set_sticky_weights(weights, spec)
        wanted = check_weights(weights, self._groups, maximum=self.max_weight)
        servers = self._servers()
        self._require_up(wanted, servers)
        if self.route_map() is None:
            return self._apply(wanted, servers)
        only = [g for g, w in wanted.items() if w > 0]
        if len(only) == 1:
            # All to one group: its backend, in one step. The weighted backend (not in
            # use unless a canary runs) is set to match first: were a request routed to
            # it while the map changes, it gets the new group too.
            self._wait_group_backend(only[0])
            self._apply(wanted, servers, persist=False)
            self._set_route(group_backend(self.backend, only[0]))
            # Now that "live" names one group the sticky rules match nobody: stuck clients
            # went to that group with everyone else. Drop their entries.
            self._clear_sticky()
        else:
            # A split: weights on the weighted backend first (not in use while a group's
            # own backend is), then route to it in one step. Not sticky: the sticky rules
            # go first (deleting "sticky.canary" turns them off in one step).
            self._apply(wanted, servers, persist=False)
            self._clear_sticky()
            self._set_route(self.backend)
        state = self._read_back(
            lambda s: dict(s.weights) == _percent(_expected(wanted, self._counts(servers))),
            f"route {dict(wanted)}",
        )
        self._persist()
        return state

    # -- sticky splits and preview routes (the route map's other keys) -------------------
    def _no_sticky_rules(self) -> str:
        return (
            f"HAProxy backend {self.backend}: the config has no sticky rules; render it with "
            "HAProxySite(sticky_cookie=... or sticky_header=..., route_map_dir=...) and reload "
            "(LocalHAProxySpec(sticky_cookie=...)), or use a non-sticky canary"
        )

    def sticky_problem(self, sticky: StickySpec) -> str | None:
        """What keeps this backend from a sticky split on ``sticky``'s key: no route map,
        no sticky rules in the config, or rules keyed on another cookie/header."""
        if self.route_map() is None:
            return (
                f"HAProxy backend {self.backend}: sticky weights need the route map "
                "(HAProxySite.route_map_dir; LocalHAProxy sets it)"
            )
        configured = self._features.sticky_key
        if configured is None:
            return self._no_sticky_rules()
        if configured != sticky.key:
            return (
                f"HAProxy backend {self.backend}: the config's sticky rules key on "
                f"{configured}, not {sticky.key}; change one to match (and reload)"
            )
        return None

    def set_sticky_weights(self, weights: Mapping[str, int], sticky: StickySpec) -> RouterState:
        """Split between two groups so that each client (by ``sticky``'s cookie or header)
        stays on one group while the canary's share grows.

        The key hashes to a bucket 0..99; buckets below the canary's percent go to the
        canary group's own backend, the others to the stable group's. Needs the route map
        and sticky rules keyed on the same cookie/header in the config
        (:class:`RouterFeatureError` otherwise). Clients without the key get the weighted
        split. Raising the canary's share keeps its clients; :meth:`switch` moves every
        client to one group. The canary is the group not live before the first sticky
        split (then the one ``sticky.canary`` names).
        """
        problem = self.sticky_problem(sticky)
        if problem is not None:
            raise RouterFeatureError(problem)
        wanted = check_weights(weights, self._groups, maximum=self.max_weight)
        positive = [g for g, w in wanted.items() if w > 0]
        if len(positive) == 1:
            return self.set_weights(wanted)  # all to one group: nothing to stick to
        if len(positive) > 2:
            raise RouterInputError(f"sticky weights split between two groups, got {dict(wanted)}")
        servers = self._servers()
        self._require_up(wanted, servers)
        entries = self._map()
        known = {group_backend(self.backend, g): g for g in self._groups}
        canary = known.get(entries.get(STICKY_CANARY, ""))
        if canary not in positive:
            routed = self._routed_group()
            canary = next(
                (g for g in positive if g != routed),
                min(positive, key=lambda g: (wanted[g], g)),
            )
        stable = next(g for g in positive if g != canary)
        total = wanted[canary] + wanted[stable]
        percent = min(99, max(1, round(100 * wanted[canary] / total)))
        for g in (stable, canary):
            self._wait_group_backend(g)
        self._apply(wanted, servers, persist=False)  # clients without the key: the weighted split
        # The rules act only while "live" is the weighted backend and "sticky.canary" is
        # set: fill the entries in, then turn them on in one step.
        self._map_put(STICKY_STABLE, group_backend(self.backend, stable))
        self._map_put(STICKY_WEIGHT, str(percent))
        self._map_put(STICKY_CANARY, group_backend(self.backend, canary))
        self._set_route(self.backend)
        want = {
            ROUTE_KEY: self.backend,
            STICKY_CANARY: group_backend(self.backend, canary),
            STICKY_STABLE: group_backend(self.backend, stable),
            STICKY_WEIGHT: str(percent),
        }
        state = self._read_back(
            lambda s: (
                s.sticky
                and all(self._map().get(k) == v for k, v in want.items())
                and dict(s.weights) == _percent(_expected(wanted, self._counts(servers)))
            ),
            f"sticky split {canary} {percent}% of {sticky.key}",
        )
        self._persist()
        return state

    def _clear_sticky(self) -> None:
        # "sticky.canary" first: its absence turns the sticky rules off.
        self._map_del(STICKY_CANARY, STICKY_WEIGHT, STICKY_STABLE)

    def open_preview(self, group: str, *, header: str = DEFAULT_PREVIEW_HEADER) -> PreviewRoute:
        """Send requests with ``header: <group>`` to ``group``'s own backend.

        One ``add map`` entry (``preview.<group>``) that the frontend's preview rule looks
        up; other requests are routed as before. Needs the route map and the config's
        ``preview_header`` equal to ``header`` (:class:`RouterFeatureError` otherwise).
        An earlier preview route of another group is removed.
        """
        self._known(group)
        check_http_name("preview header", header)
        configured = self._features.preview_header
        if self.route_map() is None or configured is None:
            raise RouterFeatureError(
                f"HAProxy backend {self.backend}: the config has no preview rules; they come "
                "with the route map (HAProxySite.route_map_dir, preview_header)"
            )
        if configured.lower() != header.lower():
            raise RouterFeatureError(
                f"HAProxy backend {self.backend}: the config's preview rule reads header "
                f"{configured}, not {header}"
            )
        self._wait_group_backend(group)
        others = [k for k in self._map() if k.startswith(PREVIEW_PREFIX) and k != _pkey(group)]
        self._map_del(*others)
        self._map_put(_pkey(group), group_backend(self.backend, group))
        self._read_back(
            lambda _s: self.preview_route() == PreviewRoute(group, configured),
            f"preview route {configured}: {group}",
        )
        self._persist()
        return PreviewRoute(group, configured)

    def close_preview(self) -> bool:
        """Delete every preview entry of the route map; True when there was one."""
        keys = [k for k in self._map() if k.startswith(PREVIEW_PREFIX)]
        if not keys:
            return False
        self._map_del(*keys)
        self._read_back(lambda _s: self.preview_route() is None, "preview route removed")
        self._persist()
        return True

    def preview_route(self) -> PreviewRoute | None:
        """The preview route in the route map now, or ``None``."""
        header = self._features.preview_header or DEFAULT_PREVIEW_HEADER
        for key, value in self._map().items():
            group = key[len(PREVIEW_PREFIX) :]
            ours = key.startswith(PREVIEW_PREFIX) and group in self._groups
            if ours and value == group_backend(self.backend, group):
                return PreviewRoute(group, header)
        return None

    def _apply(
        self,
        wanted: Mapping[str, int],
        servers: list[tuple[str, Target, ServerState]],
        *,
        persist: bool = True,
    ) -> RouterState:
        """Set every active server's weight for the group shares ``wanted``; read back.

        ``persist=False``: the caller changes the route map next and saves the state
        once, whole (never the weights without their route).
        """
        counts = self._counts(servers)
        per_server = _server_weights(wanted, counts)
        current = {g: 0 for g in self._groups}
        for g, _t, st in servers:
            if not st.in_maint and not st.draining:
                current[g] = max(current[g], st.uweight)
        # Raise weights before lowering them so that some group always has weight.
        order = sorted(self._groups, key=lambda g: per_server[g] <= current[g])
        for group in order:
            for g, target, st in servers:
                active = g == group and not st.in_maint and not st.draining
                if active and st.uweight != per_server[group]:
                    self._set_weight(server_name(g, target), per_server[group])
        expected = _percent({g: per_server[g] * counts[g] for g in self._groups})
        state = self._read_back(
            lambda s: dict(s.weights) == expected,
            f"shares {expected}",
            read=lambda: RouterState.from_weights(self._shares(self._servers())),
        )
        if persist:
            self._persist()
        return state

    def register(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        """Add servers to ``group``; existing ones are left alone.

        A new server starts at weight 0 with health checks on. When its group
        already has traffic, it gets the group's weight once its first check
        passes (bounded by ``timeout``); a server that never passes stays at 0
        and :class:`ReadBackError` reports why.
        """
        self._known(group)
        wanted = sorted(set(targets))
        servers = self._servers()
        existing = {(g, t): st for g, t, st in servers}
        shares = self._shares(servers)
        added: list[Target] = []
        for target in wanted:
            name = server_name(group, target)
            st = existing.get((group, target))
            if st is not None:
                if st.in_maint or st.draining:
                    # A server drained earlier and registered again comes back.
                    self.runtime.execute(f"set server {self.backend}/{name} state ready")
                    added.append(target)
                continue
            self.runtime.execute(
                f"add server {self.backend}/{name} {target} weight 0 {self._check}",
                ok=("New server registered",),
            )
            self.runtime.execute(f"enable health {self.backend}/{name}")
            self.runtime.execute(f"enable server {self.backend}/{name}")
            added.append(target)
        if self.route_map() is not None:
            self._register_in_group_backend(group, wanted)
        self._read_back(
            lambda _s: all(t in self.targets(group) for t in wanted), f"{group}: register"
        )
        self._persist()
        if added and shares[group] > 0:
            self._promote(group, added, shares, timeout)

    def _register_in_group_backend(self, group: str, wanted: list[Target]) -> None:
        be = group_backend(self.backend, group)
        existing = {st.name: st for st in self._group_servers(group)}
        # A server joining the group in use gets weight once it passed its checks.
        weight = 0 if self._routed_group() == group else GROUP_BACKEND_WEIGHT
        for target in wanted:
            name = server_name(group, target)
            st = existing.get(name)
            if st is not None:
                if st.in_maint or st.draining:
                    self.runtime.execute(f"set server {be}/{name} state ready")
                continue
            self.runtime.execute(
                f"add server {be}/{name} {target} weight {weight} {self._check}",
                ok=("New server registered",),
            )
            self.runtime.execute(f"enable health {be}/{name}")
            self.runtime.execute(f"enable server {be}/{name}")

    def _promote(
        self, group: str, added: list[Target], shares: Mapping[str, int], timeout: float
    ) -> None:
        """Once fresh servers passed their checks, spread the group's share over them too."""
        deadline = self._clock() + timeout
        pending = set(added)
        report = self.health(group)
        while True:
            report = self.health(group)
            pending -= {th.target for th in report.targets if th.healthy}
            if not pending or self._clock() >= deadline:
                break
            self._sleep(0.2)
        if pending:
            raise ReadBackError(
                f"{group}: {len(pending)} new server(s) never became healthy; left at weight 0\n"
                + report.describe()
            )
        if self.route_map() is not None:
            be = group_backend(self.backend, group)
            for target in added:
                name = server_name(group, target)
                self.runtime.execute(f"set server {be}/{name} weight {GROUP_BACKEND_WEIGHT}")
        self._apply(shares, self._servers())

    def drain(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        """Put servers in drain (no new sessions) and wait until their sessions end."""
        self._known(group)
        names = {
            server_name(group, t) for g, t, _ in self._servers() if g == group and t in set(targets)
        }
        shares = self._shares(self._servers())
        backends = self._backends_of(group)
        for name in sorted(names):
            for be in backends:
                self.runtime.execute(f"set server {be}/{name} state drain")
        self._rebalance(shares)
        deadline = self._clock() + timeout
        while names:
            busy: dict[str, int] = {}
            for s in self._all_stats():
                if s.name in names:
                    busy[s.name] = busy.get(s.name, 0) + s.scur
            if not any(busy.values()):
                break
            if self._clock() >= deadline:
                self._persist()
                left = ", ".join(f"{n} ({c} sessions)" for n, c in sorted(busy.items()) if c)
                raise DrainTimeoutError(f"{group}: drain timed out after {timeout}s: {left}")
            self._sleep(0.1)
        self._persist()

    def deregister(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        """Drain, then remove servers; targets that are not registered are skipped."""
        self._known(group)
        present = set(self.targets(group)) & set(targets)
        if not present:
            return
        self.drain(group, present, timeout=timeout)
        deadline = self._clock() + timeout
        in_group_backend = (
            {st.name for st in self._group_servers(group)} if self.route_map() else set()
        )
        names = []
        for target in sorted(present):
            sname = server_name(group, target)
            names.append(f"{self.backend}/{sname}")
            if sname in in_group_backend:
                names.append(f"{group_backend(self.backend, group)}/{sname}")
        for name in names:
            self.runtime.execute(f"set server {name} state maint")
            while True:
                try:
                    self.runtime.execute(f"del server {name}", ok=("Server deleted",))
                    break
                except RuntimeAPIError:
                    # Idle keep-alive connections to the server may still be
                    # closing; HAProxy refuses deletion until they are gone.
                    if self._clock() >= deadline:
                        raise
                    self._sleep(0.2)
        self._read_back(lambda _s: not (set(self.targets(group)) & present), f"{group}: deregister")
        self._persist()

    def tag_release(self, group: str, version: str) -> None:
        """Record the release ``group`` carries (kept in ``releases_path``)."""
        self._known(group)
        if not version or any(c.isspace() for c in version):
            raise RouterInputError(f"release version {version!r} is empty or has whitespace")
        self._releases[group] = {
            "version": version,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if self.persistence and self.persistence.releases_path:
            write_atomic(
                self.persistence.releases_path,
                json.dumps(self._releases, indent=2) + "\n",
                mode=0o644,
            )
            if self._load_releases() != self._releases:
                raise ReadBackError(f"{group}: release tag did not read back")

    def tagged_release(self, group: str) -> str | None:
        """The version last tagged on ``group``."""
        self._known(group)
        return self._releases.get(group, {}).get("version")

    # -- persistence -----------------------------------------------------------
    def persist(self) -> None:
        """Write the config file (and state file) from what HAProxy reports now."""
        self._persist()

    def server_entries(self) -> list[ServerEntry]:
        """The servers as HAProxy runs them now, as config entries."""
        return [
            ServerEntry(g, t, weight=st.uweight, maint=st.in_maint) for g, t, st in self._servers()
        ]

    def rendered_config(self, site: HAProxySite | None = None) -> str:
        """``site`` (default: the persisted one) rendered with the servers HAProxy runs now.

        Use it to change the rest of the config without losing runtime changes.
        """
        if site is None:
            if self.persistence is None:
                raise RouterInputError("rendered_config: no site given and no persistence set")
            site = self.persistence.site
        return render_config(site.with_servers(self.server_entries()))

    def _persist(self) -> None:
        if self.persistence is None:
            return
        site = self.persistence.site
        route_map = self.route_map()
        if route_map is not None:
            # HAProxy loads the map at start: a restart keeps the backend in use.
            entries = self._map()
            text = "".join(f"{k} {v}\n" for k, v in entries.items())
            write_atomic(route_map, text, mode=0o644)
        write_atomic(self.persistence.config_path, self.rendered_config(site), mode=0o644)
        if site.state_file:
            write_atomic(site.state_file, self.runtime.raw("show servers state"), mode=0o644)

    def _load_releases(self) -> dict[str, dict[str, str]]:
        path = self.persistence.releases_path if self.persistence else None
        if not path or not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise RouterInputError(f"{path}: expected a JSON object of releases")
        return {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.items()}

    # -- helpers -----------------------------------------------------------------
    def _known(self, group: str) -> None:
        if group not in self._groups:
            raise RouterInputError(
                f"unknown group {group!r} (this router has: {', '.join(self._groups)})"
            )

    def _require_up(
        self, wanted: Mapping[str, int], servers: list[tuple[str, Target, ServerState]]
    ) -> None:
        up = {g for g, _, st in servers if st.op_state == 2 and not st.in_maint and not st.draining}
        for group, weight in wanted.items():
            if weight > 0 and group not in up:
                raise RouterInputError(
                    f"group {group!r} has no server that is up; refusing to send it traffic"
                )

    def _rebalance(self, shares: Mapping[str, int]) -> None:
        """Keep group shares after servers left: spread them over the remaining servers."""
        servers = self._servers()
        counts = self._counts(servers)
        kept = {g: (w if counts[g] else 0) for g, w in shares.items()}
        if any(kept.values()):
            self._apply(kept, servers)

    def _backends_of(self, group: str) -> list[str]:
        if self.route_map() is None:
            return [self.backend]
        return [self.backend, group_backend(self.backend, group)]

    def _set_weight(self, name: str, weight: int) -> None:
        self.runtime.execute(f"set server {self.backend}/{name} weight {weight}")

    def _read_back(
        self,
        done: Callable[[RouterState], bool],
        what: str,
        read: Callable[[], RouterState] | None = None,
    ) -> RouterState:
        """Re-read until ``done`` holds; HAProxy applies at once, so this is bounded short."""
        for _ in range(20):
            state = (read or self.state)()
            if done(state):
                return state
            self._sleep(0.05)
        raise ReadBackError(f"HAProxy {self.backend}: {what} did not read back; now {state}")


def _percent(totals: Mapping[str, int]) -> dict[str, int]:
    """Integer percentages of ``totals`` summing to 100 (largest remainder); all 0 if empty."""
    whole = sum(totals.values())
    if not whole:
        return dict.fromkeys(totals, 0)
    exact = {g: 100 * t / whole for g, t in totals.items()}
    out = {g: int(v) for g, v in exact.items()}
    by_remainder = sorted(totals, key=lambda g: (out[g] - exact[g], g))
    for g in by_remainder[: 100 - sum(out.values())]:
        out[g] += 1
    return out


def _expected(wanted: Mapping[str, int], counts: Mapping[str, int]) -> dict[str, int]:
    """Group totals the weighted backend carries for ``wanted``."""
    per_server = _server_weights(wanted, counts)
    return {g: per_server[g] * counts[g] for g in wanted}


def _server_weights(wanted: Mapping[str, int], counts: Mapping[str, int]) -> dict[str, int]:
    """Per-server weight (1..256) for each group so group totals follow ``wanted``.

    The group with the highest share per server gets 256, the best resolution
    HAProxy offers; groups without weight or without servers get 0.
    """
    ratios = {g: w / counts[g] for g, w in wanted.items() if w > 0 and counts.get(g)}
    if not ratios:
        return dict.fromkeys(wanted, 0)
    top = max(ratios.values())
    return {g: (max(1, round(ratios[g] * 256 / top)) if g in ratios else 0) for g in wanted}


__all__ = [
    "FULL_WEIGHT",
    "PREVIEW_PREFIX",
    "ROUTE_KEY",
    "STICKY_CANARY",
    "STICKY_STABLE",
    "STICKY_WEIGHT",
    "HAProxyPersistence",
    "HAProxyRouter",
]
