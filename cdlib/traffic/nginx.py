"""The nginx router: weights in a generated upstream config, graceful reloads, read back
from nginx itself, metrics from a JSON access log.

Every command runs through a cdlib :class:`~cdlib.connections.base.Connection`, so the
same router drives an nginx on this machine (local connection) or on a host over SSH.
A change renders the whole config (:mod:`cdlib.traffic.nginx_config`, which refuses
what nginx cannot hold), checks it with ``nginx -t`` as a candidate file, keeps the
previous config as ``nginx.conf.prev``, installs it and reloads (SIGHUP: new workers
take new connections, old ones finish theirs, bounded by ``worker_shutdown_timeout``).

Read back: ``nginx -T`` dumps the config nginx parses *from disk*, which is not proof
that the running master loaded it. So each generated config carries a generation number,
both as a comment (seen by ``nginx -T``) and as the body of ``/cdlib/generation`` on the
admin socket (answered by the running workers). A read is only trusted when the two
agree; after a reload the router waits (bounded) until the workers answer the new
generation, and only then parses the weights from ``nginx -T``.

This module is also the example of "one module per router": the router, its
:class:`NginxSpec` (registered by kind ``nginx``) and nothing elsewhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cdlib.connections.base import Connection
from cdlib.connections.shell import atomic_write_command, q
from cdlib.inventory.export import is_secret_name
from cdlib.secret import Secret, SecretText
from cdlib.traffic.base import (
    DEFAULT_PREVIEW_HEADER,
    BasicRouter,
    DrainTimeoutError,
    HealthReport,
    PreviewRoute,
    ReadBackError,
    RouterFeatureError,
    RouterInputError,
    RouterMetrics,
    RouterState,
    StickySpec,
    Target,
    TargetGroupMetrics,
    TargetHealth,
    TrafficError,
    check_group_name,
    check_weights,
)
from cdlib.traffic.nginx_config import (
    LoadedConfig,
    NginxSite,
    ServerLine,
    StickyRoute,
    header_name,
    log_metrics,
    metrics_of,
    parse_dump,
    render_config,
    server_weights,
    target_word,
)
from cdlib.traffic.spec import RouterSpec

#: Lines of the access log read for one metrics window (the newest ones).
LOG_TAIL_LINES = 200_000

#: What a change makes of the sticky split and preview route: (sticky, preview).
_Features = tuple[StickyRoute | None, PreviewRoute | None]


class NginxConfigError(TrafficError):
    """``nginx -t`` refused a new config; nothing was installed or reloaded."""


class NginxRouter(BasicRouter):
    """A :class:`Router` over an nginx whose whole config cdlib generates.

    ``conn`` runs the commands (local or SSH); ``site`` says where the files are and
    what nginx serves; ``nginx`` is the binary's name or path on that host.
    """

    max_weight = 1000

    def __init__(
        self,
        conn: Connection,
        site: NginxSite,
        *,
        nginx: str = "nginx",
        reload_timeout: float = 15.0,
    ) -> None:
        self.conn = conn
        self.site = site
        self.nginx = nginx
        self.reload_timeout = reload_timeout

    # -- commands ------------------------------------------------------------------
    def _sh(self, command: str, *, stdin: bytes | None = None, timeout: float = 60.0) -> str:
        res = self.conn.run(command, stdin=stdin, timeout=timeout)
        if not res.ok:
            why = (res.stderr or res.stdout).strip() or f"exit {res.exit_code}"
            raise TrafficError(f"nginx on {self.conn.host}: {why}")
        return res.stdout

    def _nginx(self, *args: str, conf: str = "nginx.conf") -> str:
        wd = self.site.workdir.rstrip("/") + "/"
        return " ".join(
            [q(self.nginx), "-p", q(wd), "-c", q(self.site.file(conf)), *(q(a) for a in args)]
        )

    def _admin(self, uri: str) -> str:
        return (
            "curl -sS --max-time 5 -o - -w '\\n%{http_code}' --unix-socket "
            f"{q(self.site.file('private/admin.sock'))} {q('http://cdlib' + uri)}"
        )

    # -- process -------------------------------------------------------------------
    def running(self) -> bool:
        """True when the master in the pid file is alive and its workers answer."""
        res = self.conn.run(self._admin("/cdlib/generation"), timeout=10)
        return res.ok and res.stdout.rstrip().endswith("200")

    def start(self) -> None:
        """Create the work directory and a first config (no servers) when missing,
        check it and start nginx; returns once its workers answer."""
        wd = self.site.workdir
        self._sh(
            f"mkdir -p {q(wd + '/tmp')} {q(wd + '/private')} && chmod 711 {q(wd)} && "
            f"chmod 700 {q(wd + '/private')}"
        )
        if not self.conn.run(f"test -f {q(self.site.file('nginx.conf'))}").ok:
            self._install_text(render_config(self.site, [], 1), "nginx.conf")
        self._check("nginx.conf")
        self._sh(self._nginx())
        self._read(wait=self.reload_timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (``nginx -s quit``), waiting (bounded) until the master is gone."""
        pid = self.site.file("nginx.pid")
        self.conn.run(self._nginx("-s", "quit"))
        self.conn.run(
            f"i=0; while [ -f {q(pid)} ] && [ $i -lt {int(timeout * 10)} ]; "
            "do sleep 0.1; i=$((i+1)); done",
            timeout=timeout + 10,
        )

    # -- reading -------------------------------------------------------------------
    def _read(self, *, wait: float = 2.0, agree: int = 1) -> LoadedConfig:
        """``nginx -T`` parsed, once the running workers answer the same generation
        ``agree`` times in a row (each a new connection), waiting at most ``wait`` s.

        Right after a reload the old workers may still accept a connection or two
        before they close their listeners, hence the wait and the repeated answer.
        """
        deadline = time.monotonic() + wait
        n = 0
        while True:
            dump = self._sh(self._nginx("-T", "-q"))
            loaded = parse_dump(_main_file(dump, self.site.file("nginx.conf")))
            res = self.conn.run(self._admin("/cdlib/generation"), timeout=10)
            body, _, code = res.stdout.rstrip().rpartition("\n")
            serving = body.strip() if res.ok and code == "200" else None
            n = n + 1 if serving == str(loaded.generation) else 0
            if n >= agree:
                return loaded
            if n:
                continue
            if time.monotonic() >= deadline:
                raise ReadBackError(
                    f"nginx on {self.conn.host}: the config on disk is generation "
                    f"{loaded.generation} but the running workers answer "
                    f"{serving or 'nothing (' + (res.stderr.strip() or 'no answer') + ')'}"
                )
            time.sleep(0.1)

    @property
    def groups(self) -> tuple[str, ...]:
        """The site's groups."""
        return self.site.groups

    def state(self) -> RouterState:
        """Group shares in percent of the server weights nginx runs with (``sticky``
        when a sticky split is in the config)."""
        cur = self._read()
        return RouterState.from_weights(cur.shares(self.groups), sticky=cur.sticky is not None)

    def targets(self, group: str) -> tuple[Target, ...]:
        """The targets of ``group`` in the running config (draining ones included)."""
        return self._read().targets(self._known(group))

    # -- changing ------------------------------------------------------------------
    def _check(self, conf: str) -> None:
        res = self.conn.run(self._nginx("-t", "-q", conf=conf), timeout=60)
        if not res.ok:
            why = (res.stderr or res.stdout).strip() or f"exit {res.exit_code}"
            raise NginxConfigError(f"nginx -t refused the new config on {self.conn.host}: {why}")

    def _install_text(self, text: str, name: str) -> None:
        self._sh(
            atomic_write_command(self.site.file(name), "0600", None, None), stdin=text.encode()
        )

    def _change(
        self,
        new: Callable[[LoadedConfig], list[ServerLine]],
        features: Callable[[LoadedConfig], _Features] | None = None,
    ) -> LoadedConfig:
        """Render, ``nginx -t``, keep the previous file, install, reload, read back.

        ``features`` gives the sticky split and preview route of the new config; without
        it both are kept as they are."""
        cur = self._read()
        servers = new(cur)
        sticky, preview = features(cur) if features else (cur.sticky, cur.preview)
        text = render_config(self.site, servers, cur.generation + 1, sticky=sticky, preview=preview)
        self._install_text(text, "nginx.conf.candidate")
        try:
            self._check("nginx.conf.candidate")
        except NginxConfigError:
            self.conn.run(f"rm -f {q(self.site.file('nginx.conf.candidate'))}")
            raise
        conf, prev = self.site.file("nginx.conf"), self.site.file("nginx.conf.prev")
        old_workers = set(self._workers())
        self._sh(
            f"cp -p {q(conf)} {q(prev)} && "
            f"mv -f {q(self.site.file('nginx.conf.candidate'))} {q(conf)} && "
            + self._nginx("-s", "reload")
        )
        try:
            self._retire(old_workers)
            loaded = self._read(wait=self.reload_timeout, agree=3)
        except ReadBackError as exc:
            # The master kept the old config (it logs why): put its file back, so the
            # file on disk again says what runs.
            self.conn.run(f"cp -p {q(prev)} {q(conf)}")
            log = self.site.file("error.log")
            raise ReadBackError(f"{exc}; reload not taken, see {log}") from exc
        if (
            sorted(loaded.servers, key=_key) != sorted(servers, key=_key)
            or loaded.sticky != sticky
            or loaded.preview != preview
        ):
            raise ReadBackError(f"nginx on {self.conn.host}: read back differs from what was set")
        return loaded

    def _workers(self) -> dict[int, str]:
        """The master's children: pid -> process title."""
        pid = q(self.site.file("nginx.pid"))
        out = self._sh(f'ps -o pid=,args= --ppid "$(cat {pid})" || true')
        workers = {}
        for line in out.splitlines():
            num, _, title = line.strip().partition(" ")
            if num.isdigit():
                workers[int(num)] = title
        return workers

    def _retire(self, old: set[int]) -> None:
        """Wait until every worker from before the reload has stopped accepting (its
        title says "shutting down") or exited; the new workers then take every new
        connection. Measured: an old worker sometimes missed the master's quit
        command after quick successive reloads and kept accepting with the old
        config, so one still accepting after a second is sent SIGQUIT itself (the
        graceful stop the master asks for; it is our master's child, just listed)."""
        deadline = time.monotonic() + self.reload_timeout
        nudge = time.monotonic() + 1.0
        while True:
            now = self._workers()
            if not old.isdisjoint(now) and len(now) <= len(old):
                accepting = list(old & set(now))  # no new worker yet: reload pending
            else:
                accepting = [p for p in old & set(now) if "shutting down" not in now[p]]
            if not accepting:
                return
            if time.monotonic() >= deadline:
                raise ReadBackError(
                    f"nginx on {self.conn.host}: old worker(s) {accepting} still accept "
                    f"{self.reload_timeout:.0f}s after the reload"
                )
            if time.monotonic() >= nudge and len(now) > len(old):
                self.conn.run("kill -QUIT " + " ".join(str(p) for p in accepting))
                nudge = time.monotonic() + 1.0
            time.sleep(0.05)

    def set_weights(self, weights: Mapping[str, int], *, sticky: bool = False) -> RouterState:
        """Split traffic by group share (groups left out get 0); one reload.

        Not sticky: a sticky split in the config is removed in the same reload (so a
        :meth:`switch`, a rollback, moves stuck clients too). ``sticky=True`` keeps the
        key of the sticky split in the config (:meth:`set_sticky_weights`)."""
        if sticky:
            cur = self._read().sticky
            if cur is None:
                raise RouterFeatureError(
                    "nginx router: no sticky split to keep; use set_sticky_weights(weights, "
                    "StickySpec(cookie=... or header=...)) first"
                )
            spec = (
                StickySpec(cookie=cur.name) if cur.kind == "cookie" else StickySpec(header=cur.name)
            )
            return self.set_sticky_weights(weights, spec)
        want = check_weights(weights, self.groups, maximum=self.max_weight)
        return self._set(want, lambda cur: (None, cur.preview))

    def _set(
        self, want: dict[str, int], features: Callable[[LoadedConfig], _Features]
    ) -> RouterState:
        def new(cur: LoadedConfig) -> list[ServerLine]:
            members = _members(cur)
            for g, w in want.items():
                if w > 0 and not members.get(g):
                    raise RouterInputError(f"set_weights: group {g} has no target to serve")
            return _weighted(cur.servers, want, members)

        total = sum(want.values())
        expect = {g: round(w * 100 / total) for g, w in want.items()}
        loaded = self._change(new, features)
        state = RouterState.from_weights(
            loaded.shares(self.groups), sticky=loaded.sticky is not None
        )
        if dict(state.weights) != expect:
            raise ReadBackError(f"nginx: asked {expect}, read back {dict(state.weights)}")
        return state

    # -- sticky splits and preview routes --------------------------------------------
    def sticky_problem(self, sticky: StickySpec) -> str | None:
        """A cookie or header name nginx cannot read; any other key can be split on."""
        try:
            StickyRoute.of(sticky, "a", "b", 1)
        except (RouterInputError, RouterFeatureError) as exc:
            return str(exc)
        return None

    def set_sticky_weights(self, weights: Mapping[str, int], sticky: StickySpec) -> RouterState:
        """Split between two groups so that each client (by ``sticky``'s cookie or header)
        stays on one group while the canary's share grows; one reload.

        nginx's ``split_clients`` hashes the key onto fixed ranges from 0: keys below the
        canary's percent go to the canary group's own upstream, the others to the stable
        group's, so raising the share only adds clients to the canary. Requests without
        the key get the weighted split. :meth:`switch` (or :meth:`set_weights`) removes
        the split, moving every client. The canary is the group not live before the first
        sticky split (then the one the split names). Cookie names must be letters,
        digits and ``_``, header names letters, digits and ``-`` (what nginx can read).
        """
        route = StickyRoute.of(sticky, "a", "b", 1)  # checks the name before anything
        want = check_weights(weights, self.groups, maximum=self.max_weight)
        positive = [g for g, w in want.items() if w > 0]
        if len(positive) == 1:
            return self.set_weights(want)  # all to one group: nothing to stick to
        if len(positive) > 2:
            raise RouterInputError(f"sticky weights split between two groups, got {dict(want)}")

        def features(cur: LoadedConfig) -> _Features:
            canary = cur.sticky.canary if cur.sticky else None
            if canary not in positive:
                live = RouterState.from_weights(cur.shares(self.groups)).live
                canary = next(
                    (g for g in positive if g != live),
                    min(positive, key=lambda g: (want[g], g)),
                )
            stable = next(g for g in positive if g != canary)
            percent = min(99, max(1, round(100 * want[canary] / (want[canary] + want[stable]))))
            return (
                StickyRoute(route.kind, route.name, canary, stable, percent),
                cur.preview,
            )

        return self._set(want, features)

    def open_preview(self, group: str, *, header: str = DEFAULT_PREVIEW_HEADER) -> PreviewRoute:
        """Send requests with ``header: <group>`` to ``group``'s own upstream (a ``map``
        of the header in the generated config); others are routed as before. One reload,
        read back. An earlier preview route is replaced. ``header`` must be letters,
        digits and ``-`` (nginx drops headers with ``_``)."""
        self._known(group)
        header_name("preview header", header)
        if not _members(self._read()).get(group):
            raise RouterInputError(f"open_preview: group {group} has no target to serve")
        route = PreviewRoute(group, header)
        self._change(lambda cur: list(cur.servers), lambda cur: (cur.sticky, route))
        return route

    def close_preview(self) -> bool:
        """Remove the preview route (one reload); True when there was one."""
        if self._read().preview is None:
            return False
        self._change(lambda cur: list(cur.servers), lambda cur: (cur.sticky, None))
        return True

    def preview_route(self) -> PreviewRoute | None:
        """The preview route in the running config, or ``None``."""
        return self._read().preview

    def register(self, group: str, targets: Iterable[Target], timeout: float = 0.0) -> None:
        """Add targets to ``group`` (each group keeps its share); already registered ones
        (draining ones come back) are left alone. ``timeout`` is unused (no checks to wait
        for: nginx open source checks passively)."""
        self._known(group)
        add = sorted(set(targets))
        for t in add:
            target_word(t)

        def new(cur: LoadedConfig) -> list[ServerLine]:
            shares = cur.shares(self.groups)
            by_target = {s.target: s for s in cur.servers}
            kept = [s for s in cur.servers if s.target not in add]
            for t in add:
                old = by_target.get(t)
                if old is not None and old.group != group:
                    raise RouterInputError(f"register: {t} is already in group {old.group}")
                kept.append(ServerLine(group, t, 0))
            return _weighted(kept, shares, _members(LoadedConfig(0, tuple(kept))))

        cur = self._read()
        have = {s.target for s in cur.servers if s.group == group and not s.draining}
        if set(add) - have:
            self._change(new)

    def drain(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        """Take ``targets`` out of the rotation (reload) and wait until the old workers,
        which finish the requests they hold, have exited (bounded by ``timeout``)."""
        self._known(group)
        out = set(targets)

        def new(cur: LoadedConfig) -> list[ServerLine]:
            shares = cur.shares(self.groups)
            servers = [
                ServerLine(s.group, s.target, 0, True)
                if s.group == group and s.target in out
                else s
                for s in cur.servers
            ]
            members = _members(LoadedConfig(0, tuple(servers)))
            if shares.get(group, 0) > 0 and not members.get(group):
                raise RouterInputError(
                    f"drain: group {group} carries traffic and would have no target left"
                )
            return _weighted(servers, shares, members)

        if out & set(self._read().targets(group)):
            self._change(new)
        self._wait_old_workers(timeout, out)

    def deregister(self, group: str, targets: Iterable[Target], *, timeout: float = 30.0) -> None:
        """Drain ``targets``, then remove them from the config; unknown ones are no error."""
        out = set(targets) & set(self.targets(group))
        if not out:
            return
        self.drain(group, sorted(out), timeout=timeout)
        self._change(lambda cur: [s for s in cur.servers if s.target not in out])

    def _wait_old_workers(self, timeout: float, targets: set[Target]) -> None:
        pid = q(self.site.file("nginx.pid"))
        count = f'pgrep -c -P "$(cat {pid})" || true'
        deadline = time.monotonic() + timeout
        while True:
            n = int(self._sh(count).strip() or 0)
            if n <= self.site.worker_processes:
                return
            if time.monotonic() >= deadline:
                names = ", ".join(str(t) for t in sorted(targets))
                raise DrainTimeoutError(
                    f"nginx drain of {names}: {n - self.site.worker_processes} old worker(s) "
                    f"still hold connections after {timeout:.0f}s"
                )
            time.sleep(0.2)

    # -- health --------------------------------------------------------------------
    def health(self, group: str) -> HealthReport:
        """Each target's health path, fetched by nginx itself (admin socket)."""
        out = []
        for t in self._read().targets(self._known(group)):
            res = self.conn.run(self._admin(f"/cdlib/health/{target_word(t)}"), timeout=15)
            code = res.stdout.rstrip().rpartition("\n")[2]
            ok = res.ok and code == "200"
            why = f"HTTP {code}" if res.ok else (res.stderr.strip() or "no answer")
            out.append(TargetHealth(t, ok, "healthy" if ok else "unhealthy", "" if ok else why))
        return HealthReport(group, tuple(out))

    # -- releases and metrics ------------------------------------------------------
    def _releases(self) -> dict[str, str]:
        res = self.conn.run(f"cat {q(self.site.file('releases.json'))} 2>/dev/null")
        try:
            data = json.loads(res.stdout) if res.ok else {}
        except ValueError:
            data = {}
        return {str(k): str(v) for k, v in dict(data).items()}

    def tag_release(self, group: str, version: str) -> None:
        """Record ``version`` for ``group`` in ``releases.json`` (atomic write)."""
        data = {**self._releases(), self._known(group): str(version)}
        self._install_text(json.dumps(data, sort_keys=True), "releases.json")

    def tagged_release(self, group: str) -> str | None:
        """The version last recorded for ``group``."""
        return self._releases().get(self._known(group))

    def metrics_source(self) -> RouterMetrics:
        """A windowed sample of the JSON access log (:meth:`metrics`)."""
        return RouterMetrics("windowed", self.metrics, "nginx JSON access log")

    def metrics(self, window: float = 60.0) -> dict[str, TargetGroupMetrics]:
        """Per group over the last ``window`` seconds of the access log (nginx's clock):
        requests, 5xx answers and mean upstream response time."""
        cur = self._read()
        groups = {target_word(s.target): s.group for s in cur.servers}
        text = self._sh(
            f"date +%s.%N && tail -n {LOG_TAIL_LINES} -- "
            f"{q(self.site.file('access.json'))} 2>/dev/null || true"
        )
        first, _, rest = text.partition("\n")
        now = float(first.strip())
        return metrics_of(log_metrics(rest.splitlines(), groups, since=now - window), self.groups)

    def _known(self, group: str) -> str:
        check_group_name(group)
        if group not in self.site.groups:
            raise RouterInputError(
                f"unknown group {group!r} (known: {', '.join(self.site.groups)})"
            )
        return group


def _key(s: ServerLine) -> tuple[str, Target]:
    return (s.group, s.target)


def _members(cur: LoadedConfig) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in cur.servers:
        if not s.draining:
            out[s.group] = out.get(s.group, 0) + 1
    return out


def _weighted(
    servers: Iterable[ServerLine], shares: Mapping[str, int], members: Mapping[str, int]
) -> list[ServerLine]:
    per = server_weights(shares, members)
    return [
        ServerLine(s.group, s.target, 0 if s.draining else per.get(s.group, 0), s.draining)
        for s in servers
    ]


def _main_file(dump: str, conf: str) -> str:
    """The part of ``nginx -T`` output that is the main config file."""
    head = f"# configuration file {conf}:\n"
    start = dump.find(head)
    if start < 0:
        raise ReadBackError(f"nginx -T shows no {conf}")
    rest = dump[start + len(head) :]
    end = rest.find("\n# configuration file ")
    return rest if end < 0 else rest[:end]


@dataclass
class NginxSpec(RouterSpec):
    """An nginx whose config cdlib generates, in ``workdir`` on ``host``.

    ``host_vars`` are the connection variables of that host as in an inventory
    (``ansible_connection``, ``ansible_host``, ``ansible_port``, ``ansible_user``,
    ``cdlib_known_hosts_file`` ...; no passwords: they would be stored in the history);
    the default is this machine. With ``ensure_running`` a real release (or rollback)
    starts nginx when it does not answer; status and check mode never start it.
    """

    workdir: str
    bind: str = "127.0.0.1:8080"
    groups: tuple[str, ...] = ("blue", "green")
    health_path: str = "/health"
    worker_shutdown_timeout: int = 30
    host: str = "localhost"
    host_vars: dict[str, Any] = field(default_factory=lambda: {"ansible_connection": "local"})
    nginx: str = "nginx"
    ensure_running: bool = True
    kind: ClassVar[str] = "nginx"

    def __post_init__(self) -> None:
        for k, v in self.host_vars.items():
            # Stored in the history: no password, token or key by name, no Secret by type.
            secret = "pass" in k or is_secret_name(k) or isinstance(v, Secret | SecretText)
            if secret or not isinstance(v, str | int | float | bool):
                raise RouterInputError(
                    f"nginx spec: host_vars[{k!r}] cannot be stored in the release history"
                )

    def site(self) -> NginxSite:
        """The :class:`NginxSite` of this spec (validated)."""
        return NginxSite(
            self.workdir,
            bind=self.bind,
            groups=tuple(self.groups),
            health_path=self.health_path,
            worker_shutdown_timeout=self.worker_shutdown_timeout,
        )

    def build(self) -> NginxRouter:
        """The router over a connection to ``host`` (nothing is started here)."""
        from cdlib.connections.factory import connection_for
        from cdlib.inventory.model import Host

        conn = connection_for(Host(self.host, dict(self.host_vars)))
        return NginxRouter(conn, self.site(), nginx=self.nginx)

    def start_needed(self) -> str | None:
        """``start nginx in DIR on HOST`` when ``ensure_running`` and it does not answer."""
        if self.ensure_running and not self.build().running():
            return f"start nginx in {self.workdir} on {self.host}"
        return None

    def start(self) -> None:
        """Start nginx (with a first config) when ``ensure_running`` and it does not answer."""
        router = self.build()
        if self.ensure_running and not router.running():
            router.start()


__all__ = ["NginxConfigError", "NginxRouter", "NginxSpec"]
