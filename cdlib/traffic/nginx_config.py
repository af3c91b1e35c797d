"""The nginx router's config: a writer that refuses what nginx's format cannot hold, the
parser of ``nginx -T`` that reads it back, and the JSON access log's metrics.

All pure: text in, text or values out, so each is tested from canned text. The config is
one self-contained file (no ``include``), so ``nginx -t`` of a candidate checks exactly
what a reload would load.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cdlib.traffic.base import (
    PreviewRoute,
    RouterFeatureError,
    RouterInputError,
    StickySpec,
    Target,
    TargetGroupMetrics,
    check_group_name,
    check_http_name,
)

#: Upstream and log format names in the generated config.
UPSTREAM = "cdlib_app"
LOG_FORMAT = "cdlib_json"
#: What ``nginx -T`` shows of our own markers.
_GEN_RE = re.compile(r"^# cdlib-generation (\d+)$", re.M)
_SERVER_RE = re.compile(
    r"^\s*server (?P<addr>[A-Za-z0-9.-]+:\d+)(?P<params>(?: [a-z_]+(?:=\d+)?)*);"
    r" # cdlib-group (?P<group>[a-z][a-z0-9-]{0,31})(?P<drain> draining)?$",
    re.M,
)
#: Per-group upstreams (sticky splits and preview routes route to one group's servers).
GROUP_UPSTREAM_PREFIX = "cdlib_group_"
_GROUP = r"[a-z][a-z0-9-]{0,31}"
_STICKY_RE = re.compile(
    r"^\s*split_clients \"\$\{(?:cookie|http)_[a-z0-9_]+\}\" \$cdlib_sticky_split \{"
    r" # cdlib-sticky (?P<kind>cookie|header) (?P<name>[A-Za-z0-9_-]{1,64})\n"
    rf"\s*(?P<percent>\d{{1,2}})% {GROUP_UPSTREAM_PREFIX}(?P<canary>{_GROUP});\n"
    rf"\s*\* {GROUP_UPSTREAM_PREFIX}(?P<stable>{_GROUP});\n",
    re.M,
)
_PREVIEW_RE = re.compile(
    r"^\s*map \$http_[a-z0-9_]+ \$cdlib_preview \{ # cdlib-preview (?P<header>[A-Za-z0-9-]{1,64})\n"
    rf"\s*\"(?P<value>{_GROUP})\" {GROUP_UPSTREAM_PREFIX}(?P<group>{_GROUP});\n",
    re.M,
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,63}$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
#: Paths and names that go into the config unquoted: no space, quote, ';', '{', '}', '$'.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_URI_RE = re.compile(r"^/[A-Za-z0-9._/~+-]*$")


@dataclass(frozen=True)
class NginxSite:
    """What the generated nginx config serves, and where its files live.

    ``workdir`` (an absolute path) holds ``nginx.conf`` (and ``nginx.conf.prev``, the
    config before the last change), ``nginx.pid``, ``error.log``, the JSON access log
    ``access.json``, the admin socket ``private/admin.sock`` and ``releases.json``. ``bind`` is
    ``address:port`` of the one HTTP listener. Old workers get
    ``worker_shutdown_timeout`` seconds to finish their connections after a reload.
    """

    workdir: str
    bind: str = "127.0.0.1:8080"
    groups: tuple[str, ...] = ("blue", "green")
    health_path: str = "/health"
    worker_shutdown_timeout: int = 30
    worker_processes: int = 1

    def __post_init__(self) -> None:
        path(self.workdir, "workdir")
        bind_address(self.bind)
        for g in self.groups:
            check_group_name(g)
        if len(set(self.groups)) < 2:
            raise RouterInputError(f"nginx site: needs two groups or more, got {self.groups}")
        if not _URI_RE.match(self.health_path):
            raise RouterInputError(
                f"nginx site: health_path {self.health_path!r} must be a plain absolute path"
            )
        if not 1 <= self.worker_shutdown_timeout <= 86400:
            raise RouterInputError("nginx site: worker_shutdown_timeout must be 1..86400 s")
        if not 1 <= self.worker_processes <= 64:
            raise RouterInputError("nginx site: worker_processes must be 1..64")

    def file(self, name: str) -> str:
        """The path of ``name`` in the work directory."""
        return f"{self.workdir.rstrip('/')}/{name}"


@dataclass(frozen=True)
class ServerLine:
    """One target in the upstream: its group, weight (0 = ``down``) and drain mark."""

    group: str
    target: Target
    weight: int
    draining: bool = False


@dataclass(frozen=True)
class StickyRoute:
    """A sticky split in the config: clients whose ``kind`` (``cookie`` or ``header``)
    ``name`` hashes below ``percent`` go to ``canary``'s upstream, the others to
    ``stable``'s; clients without it get the weighted upstream."""

    kind: str
    name: str
    canary: str
    stable: str
    percent: int

    @classmethod
    def of(cls, spec: StickySpec, canary: str, stable: str, percent: int) -> StickyRoute:
        """The route of ``spec`` (its name checked against what nginx can read)."""
        if spec.cookie is not None:
            return cls("cookie", sticky_cookie(spec.cookie), canary, stable, percent)
        return cls(
            "header", header_name("sticky header", spec.header or ""), canary, stable, percent
        )

    @property
    def key(self) -> str:
        """``cookie NAME`` or ``header NAME`` (as :attr:`StickySpec.key`)."""
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class LoadedConfig:
    """What ``nginx -T`` shows: the generation marker, the upstream's servers and the
    sticky split and preview route, if any."""

    generation: int
    servers: tuple[ServerLine, ...]
    sticky: StickyRoute | None = None
    preview: PreviewRoute | None = None

    def targets(self, group: str) -> tuple[Target, ...]:
        """The targets of ``group`` (draining ones included), sorted."""
        return tuple(sorted(s.target for s in self.servers if s.group == group))

    def shares(self, groups: Iterable[str]) -> dict[str, int]:
        """Group shares in percent of the summed server weights (0 for down groups)."""
        sums = dict.fromkeys(groups, 0)
        for s in self.servers:
            if s.group in sums:
                sums[s.group] += s.weight
        total = sum(sums.values())
        return {g: round(w * 100 / total) if total else 0 for g, w in sums.items()}


def path(value: str, what: str) -> str:
    """``value`` if nginx can hold it unquoted as an absolute path; else a clear error."""
    if not isinstance(value, str) or not _PATH_RE.match(value) or "//" in value:
        raise RouterInputError(
            f"nginx: {what} {value!r} must be an absolute path of letters, digits and ._/+-"
        )
    return value


def sticky_cookie(name: str) -> str:
    """``name`` if nginx can read it as ``$cookie_NAME`` (letters, digits, ``_``); else
    :class:`RouterFeatureError` (a ``-`` or ``.`` ends nginx's variable name)."""
    check_http_name("sticky cookie", name)
    if not _NAME_RE.match(name):
        raise RouterFeatureError(
            f"nginx router: sticky cookie {name!r} cannot be read by nginx ($cookie_NAME "
            "holds letters, digits and '_' only)"
        )
    return name


def header_name(what: str, name: str) -> str:
    """``name`` if nginx can read it as ``$http_name`` (letters, digits, ``-``); else
    :class:`RouterFeatureError` (nginx drops headers with ``_`` by default; ``.`` cannot
    be in a variable name)."""
    check_http_name(what, name)
    if not _HEADER_RE.match(name):
        raise RouterFeatureError(
            f"nginx router: {what} {name!r} cannot be read by nginx (letters, digits and '-' "
            "only: nginx drops headers with '_' and cannot name '.' in a variable)"
        )
    return name


def _variable(kind: str, name: str) -> str:
    if kind == "cookie":
        return f"cookie_{sticky_cookie(name)}"
    return "http_" + header_name("header", name).lower().replace("-", "_")


def bind_address(bind: str) -> str:
    """``bind`` (``address:port``) if nginx can hold it; else a clear error."""
    host, sep, port = bind.rpartition(":")
    if not sep or not _HOST_RE.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise RouterInputError(f"nginx: bind {bind!r} is not address:port (IPv4 or a name)")
    return bind


def target_word(target: Target) -> str:
    """``host:port`` of ``target`` if nginx can hold it in a ``server`` line; else a
    clear error naming the target (IPv6 and names with odd characters are refused)."""
    if not _HOST_RE.match(target.host):
        raise RouterInputError(
            f"nginx: target host {target.host!r} must be an IPv4 address or a host name "
            "(letters, digits, '.', '-')"
        )
    return f"{target.host}:{target.port}"


def server_weights(weights: Mapping[str, int], members: Mapping[str, int]) -> dict[str, int]:
    """Per-server weight of each group so that a group's share is its weight, whatever
    its size: ``weights[g] * L / members[g]`` with ``L`` the lcm of the sizes, reduced."""
    live = {g: w for g, w in weights.items() if w > 0 and members.get(g, 0) > 0}
    if not live:
        return dict.fromkeys(weights, 0)
    lcm = math.lcm(*(members[g] for g in live))
    per = {g: w * lcm // members[g] for g, w in live.items()}
    div = math.gcd(*per.values())
    return {g: per.get(g, 0) // div for g in weights}


def _features(
    site: NginxSite,
    servers: Sequence[ServerLine],
    sticky: StickyRoute | None,
    preview: PreviewRoute | None,
) -> tuple[str, str]:
    """The per-group upstreams and the maps of a sticky split and a preview route, and
    the ``proxy_pass`` target (``$cdlib_route`` with either, else the weighted upstream).

    Order of precedence: the preview header, then the sticky key, then the weights.
    """
    if sticky is None and preview is None:
        return "", UPSTREAM
    groups: set[str] = set()
    out = []
    route = UPSTREAM
    if sticky is not None:
        for g in (sticky.canary, sticky.stable):
            check_group_name(g)
            if g not in site.groups:
                raise RouterInputError(f"nginx: sticky group {g!r} is not a group of the site")
        if sticky.canary == sticky.stable:
            raise RouterInputError("nginx: sticky canary and stable are one group")
        if isinstance(sticky.percent, bool) or not isinstance(sticky.percent, int):
            raise RouterInputError(f"nginx: sticky percent {sticky.percent!r}")
        if not 1 <= sticky.percent <= 99:
            raise RouterInputError(f"nginx: sticky percent {sticky.percent} is not in 1..99")
        var = _variable(sticky.kind, sticky.name)
        groups |= {sticky.canary, sticky.stable}
        # split_clients hashes the key (MurmurHash2) onto fixed ranges from 0: a key
        # below 20 % stays below 50 %, so raising the canary's share only adds clients.
        out.append(
            f'    split_clients "${{{var}}}" $cdlib_sticky_split {{'
            f" # cdlib-sticky {sticky.kind} {sticky.name}\n"
            f"        {sticky.percent}% {GROUP_UPSTREAM_PREFIX}{sticky.canary};\n"
            f"        * {GROUP_UPSTREAM_PREFIX}{sticky.stable};\n"
            "    }\n"
            f"    map ${var} $cdlib_sticky {{\n"
            f'        "" {UPSTREAM};\n'
            "        default $cdlib_sticky_split;\n"
            "    }"
        )
        route = "$cdlib_sticky"
    if preview is not None:
        check_group_name(preview.group)
        if preview.group not in site.groups:
            raise RouterInputError(f"nginx: preview group {preview.group!r} is not a group")
        var = _variable("header", preview.header)
        groups.add(preview.group)
        out.append(
            f"    map ${var} $cdlib_preview {{ # cdlib-preview {preview.header}\n"
            f'        "{preview.group}" {GROUP_UPSTREAM_PREFIX}{preview.group};\n'
            f"        default {route};\n"
            "    }"
        )
        route = "$cdlib_preview"
    for g in sorted(groups):
        members = [
            f"        server {target_word(s.target)}{' down' if s.draining else ''};"
            for s in sorted(servers, key=lambda s: s.target)
            if s.group == g
        ]
        if not members:
            members.append("        server 127.0.0.1:9 down; # cdlib-placeholder")
        body = "\n".join(members)
        out.insert(
            0, f"    upstream {GROUP_UPSTREAM_PREFIX}{g} {{\n{body}\n        keepalive 16;\n    }}"
        )
    return "\n".join(out) + "\n", route


def render_config(
    site: NginxSite,
    servers: Sequence[ServerLine],
    generation: int,
    *,
    sticky: StickyRoute | None = None,
    preview: PreviewRoute | None = None,
) -> str:
    """The whole nginx config: one upstream of every group's servers (weight per server,
    ``down`` for weight 0), the listener, the JSON access log and the admin socket; with
    a ``sticky`` split or a ``preview`` route also per-group upstreams and the maps that
    choose one.

    Every value is checked against what nginx can hold; a refused one raises
    :class:`RouterInputError` naming it, before anything is written.
    """
    bind_address(site.bind)
    if not isinstance(generation, int) or generation < 0:
        raise RouterInputError(f"nginx: generation {generation!r} is not a whole number")
    wd = path(site.workdir, "workdir").rstrip("/")
    lines = []
    seen: set[Target] = set()
    for s in sorted(servers, key=lambda s: (s.group, s.target)):
        check_group_name(s.group)
        if s.target in seen:
            raise RouterInputError(f"nginx: target {s.target} is in two groups")
        seen.add(s.target)
        if isinstance(s.weight, bool) or not isinstance(s.weight, int) or s.weight < 0:
            raise RouterInputError(f"nginx: {s.group} {s.target}: weight {s.weight!r}")
        word = target_word(s.target)
        params = f" weight={s.weight}" if s.weight > 0 else " weight=1 down"
        drain = " draining" if s.draining else ""
        lines.append(f"        server {word}{params}; # cdlib-group {s.group}{drain}")
    if not lines:
        # nginx refuses an empty upstream; a placeholder that is always down.
        lines.append("        server 127.0.0.1:9 down; # cdlib-placeholder")
    health = []
    for s in sorted(servers, key=lambda s: (s.group, s.target)):
        word = target_word(s.target)
        health.append(
            f"        location = /cdlib/health/{word} {{\n"
            f"            proxy_pass http://{word}{site.health_path};\n"
            "        }"
        )
    features, route = _features(site, servers, sticky, preview)
    log = (
        '\'{"msec":"$msec","upstream":"$upstream_addr","status":"$status",'
        '"upstream_time":"$upstream_response_time","pid":"$pid",'
        f'"generation":"{generation}"}}\''
    )
    nl = "\n"
    return f"""# cdlib nginx router: generated by cdlib, changed only through it
# cdlib-generation {generation}
pid {wd}/nginx.pid;
error_log {wd}/error.log warn;
worker_processes {site.worker_processes};
worker_shutdown_timeout {site.worker_shutdown_timeout}s;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {wd}/tmp/body;
    proxy_temp_path {wd}/tmp/proxy;
    fastcgi_temp_path {wd}/tmp/fastcgi;
    uwsgi_temp_path {wd}/tmp/uwsgi;
    scgi_temp_path {wd}/tmp/scgi;
    log_format {LOG_FORMAT} escape=json {log};
    access_log off;
    upstream {UPSTREAM} {{
{nl.join(lines)}
        keepalive 16;
    }}
{features}    server {{
        listen {site.bind};
        access_log {wd}/access.json {LOG_FORMAT};
        location / {{
            proxy_pass http://{route};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout;
        }}
    }}
    server {{
        listen unix:{wd}/private/admin.sock;
        proxy_connect_timeout 2s;
        proxy_read_timeout 2s;
        location = /cdlib/generation {{
            return 200 "{generation}\\n";
        }}
{nl.join(health)}
    }}
}}
"""


def parse_dump(text: str) -> LoadedConfig:
    """Read the generation and the upstream's servers from ``nginx -T`` output (or the
    config file itself); a text without a generation marker raises ValueError."""
    gens = _GEN_RE.findall(text)
    if not gens:
        raise ValueError("no '# cdlib-generation' line: not a config cdlib generated")
    servers = []
    for m in _SERVER_RE.finditer(text):
        params = m["params"].split()
        weight = 0 if "down" in params else 1
        for p in params:
            if p.startswith("weight=") and "down" not in params:
                weight = int(p.split("=", 1)[1])
        servers.append(
            ServerLine(m["group"], Target.parse(m["addr"]), weight, draining=bool(m["drain"]))
        )
    sticky = None
    if found := _STICKY_RE.search(text):
        sticky = StickyRoute(
            found["kind"], found["name"], found["canary"], found["stable"], int(found["percent"])
        )
    preview = None
    if (found := _PREVIEW_RE.search(text)) and found["value"] == found["group"]:
        preview = PreviewRoute(found["group"], found["header"])
    return LoadedConfig(int(gens[0]), tuple(servers), sticky, preview)


def log_metrics(
    lines: Iterable[str],
    groups: Mapping[str, str],
    *,
    since: float,
) -> dict[str, tuple[int, int, float | None]]:
    """Per group: requests, 5xx answers and mean upstream time (ms) of the access-log
    ``lines`` at or after ``since`` (nginx's ``$msec``). ``groups`` maps ``host:port`` to
    its group; with retries nginx logs several upstreams, the last one answered.
    Lines that are not our JSON are skipped."""
    acc: dict[str, list[float]] = {}
    for line in lines:
        try:
            rec = json.loads(line)
            t = float(rec["msec"])
            status = int(rec["status"])
        except (ValueError, KeyError, TypeError):
            continue
        if t < since:
            continue
        upstream = str(rec.get("upstream", "")).split(",")[-1].split(":", 2)
        addr = ":".join(upstream[:2]).strip()
        group = groups.get(addr)
        if group is None:
            continue
        a = acc.setdefault(group, [0, 0, 0.0, 0])
        a[0] += 1
        a[1] += status >= 500
        times = str(rec.get("upstream_time", "")).split(",")[-1].strip()
        try:
            a[2] += float(times) * 1000
            a[3] += 1
        except ValueError:
            pass
    return {g: (int(a[0]), int(a[1]), a[2] / a[3] if a[3] else None) for g, a in acc.items()}


def metrics_of(
    parsed: Mapping[str, tuple[int, int, float | None]], groups: Iterable[str]
) -> dict[str, TargetGroupMetrics]:
    """:class:`TargetGroupMetrics` of every group from :func:`log_metrics`' result."""
    out = {}
    for g in groups:
        req, err, rt = parsed.get(g, (0, 0, None))
        out[g] = TargetGroupMetrics(g, req, err, rt)
    return out


__all__ = [
    "GROUP_UPSTREAM_PREFIX",
    "LOG_FORMAT",
    "UPSTREAM",
    "LoadedConfig",
    "NginxSite",
    "ServerLine",
    "StickyRoute",
    "bind_address",
    "header_name",
    "log_metrics",
    "metrics_of",
    "parse_dump",
    "path",
    "render_config",
    "server_weights",
    "sticky_cookie",
    "target_word",
]
