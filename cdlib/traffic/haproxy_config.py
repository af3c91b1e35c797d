"""Render HAProxy's configuration with jinja2, and reload it only when it changed.

The configuration is one frontend and one backend holding the servers of all
groups; a group's weight is applied to each of its servers. The rendered file
is also how runtime changes survive a restart: the router re-renders it after
every change (see docs/routers.md, "Persistence").
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, replace

from cdlib.connections.base import Connection
from cdlib.jinja_sandbox import sandboxed_environment
from cdlib.traffic.base import (
    DEFAULT_PREVIEW_HEADER,
    RouterInputError,
    Target,
    TrafficError,
    check_group_name,
    check_http_name,
)
from cdlib.traffic.haproxy_parse import server_name

#: Values that end up in the config file: no whitespace, quotes or comment signs.
_WORD_RE = re.compile(r"^[A-Za-z0-9_./:@\-]+$")

_TEMPLATE = """\
# Rendered by cdlib; edits are overwritten. Groups: {{ site.groups | join(' ') }}
global
    log stderr format raw local0 warning
    stats socket {{ admin_socket }} mode 600 level admin
    stats timeout 30s
{%- if site.state_file %}
    server-state-file {{ site.state_file }}
{%- endif %}
{%- if site.pidfile %}
    pidfile {{ site.pidfile }}
{%- endif %}
{%- if site.route_map %}
    # Map lookups are cached per thread; a cached route could outlive a "set map" on
    # one thread and send a client back to the old group.
    tune.pattern.cache-size 0
{%- endif %}

defaults
    mode http
    log global
    option httplog
    timeout connect {{ site.timeout_connect_ms }}ms
    timeout client {{ site.timeout_client_ms }}ms
    timeout server {{ site.timeout_server_ms }}ms
    timeout http-keep-alive {{ site.timeout_keepalive_ms }}ms
    # On a reload the old worker answers the next request on each idle keep-alive
    # connection (with "Connection: close") instead of closing it under a client that
    # is just sending one: no RemoteDisconnected for the client.
    option idle-close-on-response
    # A busy server answering a check slowly is not a dead one.
    timeout check {{ site.timeout_check_ms }}ms
    # A failed connect is retried on another server; with redispatch a
    # request never fails because one server went away mid-switch.
    retries {{ site.retries }}
    option redispatch 1
    retry-on conn-failure empty-response
{%- if site.state_file %}
    load-server-state-from-file global
{%- endif %}

frontend {{ site.frontend }}
    bind {{ site.bind }}
{%- if site.route_map %}
{%- if site.preview_header %}
    # Preview: "{{ site.preview_header }}: <group>" goes to the backend the route map's key
    # "preview.<group>" names (the router adds it before user traffic, removes it after).
    http-request set-var(txn.cdlib_pv) req.hdr({{ site.preview_header }}) \
if { req.hdr({{ site.preview_header }}) -m found }
    http-request set-var(txn.cdlib_pk) str(preview.),concat(,txn.cdlib_pv,) \
if { var(txn.cdlib_pv) -m found }
{%- endif %}
{%- if site.sticky_key %}
    # Sticky split: the client's {{ site.sticky_key }} hashes to a bucket 0..99.
    http-request set-var(txn.cdlib_sb) {{ sticky_fetch }},xxh32,mod(100) \
if { {{ sticky_fetch }} -m found }
    # A string lookup ("map", not "map_str_int"): every use of the map parses every value,
    # and backend names are no integers. "sub" below casts the string.
    http-request set-var(txn.cdlib_sw) str(sticky.weight),map({{ site.route_map }},0)
{%- endif %}
{%- if site.preview_header %}
    use_backend %[var(txn.cdlib_pk),map({{ site.route_map }})] \
if { var(txn.cdlib_pk),map({{ site.route_map }}) -m found }
{%- endif %}
{%- if site.sticky_key %}
    # While "live" is the weighted backend and the map has "sticky.canary", buckets below
    # "sticky.weight" go to the canary, the rest to "sticky.stable": raising the weight
    # only moves clients onto the canary; a switch ("live" -> one group) moves everyone.
    acl cdlib_split str(live),map({{ site.route_map }},{{ site.backend }}) -m str {{ site.backend }}
    acl cdlib_sticky var(txn.cdlib_sb) -m found
    acl cdlib_sticky_on str(sticky.canary),map({{ site.route_map }}) -m found
    acl cdlib_canary var(txn.cdlib_sb),sub(txn.cdlib_sw) lt 0
    use_backend %[str(sticky.canary),map({{ site.route_map }})] \
if cdlib_split cdlib_sticky_on cdlib_sticky cdlib_canary
    use_backend %[str(sticky.stable),map({{ site.route_map }})] \
if cdlib_split cdlib_sticky_on cdlib_sticky !cdlib_canary
{%- endif %}
    # The backend in use: key "live" of the route map (one runtime-API "set map" switches
    # every new request at once); none or the weighted backend: the weighted one.
    use_backend %[str(live),map({{ site.route_map }},{{ site.backend }})]
{%- endif %}
    default_backend {{ site.backend }}
{% for be, members, fixed in backends %}
backend {{ be }}
    balance roundrobin
    option httpchk GET {{ site.health_path }}
    http-check expect status 200
    http-reuse safe
{%- for s in members %}
    server {{ s.name }} {{ s.target }} check inter {{ site.check_inter_ms }}ms \
fall {{ site.check_fall }} rise {{ site.check_rise }} \
weight {{ s.weight if fixed is none else fixed }}\
{% if s.maint %} disabled{% endif %}
{%- endfor %}
{% endfor -%}
"""

#: Weight of every server in a group's own backend (the group gets all of that
#: backend's traffic; its servers share it equally).
GROUP_BACKEND_WEIGHT = 1


def group_backend(backend: str, group: str) -> str:
    """The backend holding only ``group``'s servers, used when all traffic goes to it."""
    return f"{backend}_{check_group_name(group)}"


def route_map_path(directory: str, backend: str) -> str:
    """The route map file of ``backend`` in ``directory`` (the router finds it by name)."""
    return f"{directory.rstrip('/')}/cdlib-{backend}-route.map"


class ConfigError(TrafficError):
    """The HAProxy configuration is invalid or could not be installed."""


@dataclass(frozen=True)
class ServerEntry:
    """One server line: a target of a group with its weight and admin state."""

    group: str
    target: Target
    weight: int = 0
    maint: bool = False

    def __post_init__(self) -> None:
        check_group_name(self.group)
        if not 0 <= self.weight <= 256:
            raise RouterInputError(
                f"server {self.name}: weight {self.weight} is not in 0..256 (HAProxy's range)"
            )

    @property
    def name(self) -> str:
        """The HAProxy server name."""
        return server_name(self.group, self.target)


@dataclass(frozen=True)
class HAProxySite:
    """Everything the rendered configuration contains.

    ``admin_socket`` is a unix socket path or ``host:port`` (TCP, loopback
    only by the caller's choice); ``bind`` is ``address:port``.
    """

    bind: str
    admin_socket: str
    groups: tuple[str, ...] = ("blue", "green")
    servers: tuple[ServerEntry, ...] = ()
    frontend: str = "www"
    backend: str = "app"
    health_path: str = "/health"
    state_file: str | None = None
    pidfile: str | None = None
    check_inter_ms: int = 1000
    check_fall: int = 2
    check_rise: int = 2
    retries: int = 3
    timeout_connect_ms: int = 2000
    timeout_client_ms: int = 30000
    timeout_server_ms: int = 30000
    timeout_keepalive_ms: int = 10000
    timeout_check_ms: int = 2000
    #: Directory of the route map (``cdlib-<backend>-route.map``, created empty when
    #: missing by :class:`~cdlib.traffic.local.LocalHAProxy` and by the
    #: ``haproxy_config`` task; an existing one is never emptied). With it,
    #: each group also gets a backend of its own and a switch is one ``set map``.
    route_map_dir: str | None = None
    #: With a route map: requests carrying this header with a group's name as value go to
    #: that group while the router has a preview route open (``None``: no preview rules).
    preview_header: str | None = DEFAULT_PREVIEW_HEADER
    #: With a route map: the cookie (or header) a sticky split keys on; at most one of the
    #: two. ``None`` for both: no sticky rules (``set_sticky_weights`` is refused).
    sticky_cookie: str | None = None
    sticky_header: str | None = None

    @property
    def sticky_key(self) -> str | None:
        """``cookie NAME`` / ``header NAME`` of the sticky rules, or ``None``."""
        if self.sticky_cookie:
            return f"cookie {self.sticky_cookie}"
        if self.sticky_header:
            return f"header {self.sticky_header}"
        return None

    @property
    def route_map(self) -> str | None:
        """The route map file, or ``None`` without ``route_map_dir``."""
        if self.route_map_dir is None:
            return None
        return route_map_path(self.route_map_dir, self.backend)

    def __post_init__(self) -> None:
        for name in ("bind", "admin_socket", "frontend", "backend", "health_path"):
            _check_word(name, getattr(self, name))
        for name in ("state_file", "pidfile", "route_map_dir"):
            value = getattr(self, name)
            if value is not None:
                _check_word(name, value)
        if self.preview_header is not None:
            check_http_name("HAProxy site: preview_header", self.preview_header)
        for name in ("sticky_cookie", "sticky_header"):
            if getattr(self, name) is not None:
                check_http_name(f"HAProxy site: {name}", getattr(self, name))
        if self.sticky_cookie and self.sticky_header:
            raise RouterInputError("HAProxy site: give sticky_cookie or sticky_header, not both")
        for group in self.groups:
            check_group_name(group)
        if len(set(self.groups)) != len(self.groups):
            raise RouterInputError(f"HAProxy site: duplicate group in {self.groups}")
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise RouterInputError("HAProxy site: the same target appears twice in one group")
        for s in self.servers:
            if s.group not in self.groups:
                raise RouterInputError(
                    f"HAProxy site: server {s.name}: group {s.group!r} is not in {self.groups}"
                )

    def with_servers(self, servers: Iterable[ServerEntry]) -> HAProxySite:
        """A copy with ``servers`` instead of the current ones (sorted, for stable output)."""
        return replace(self, servers=tuple(sorted(servers, key=lambda s: s.name)))


def _check_word(name: str, value: str) -> None:
    if not isinstance(value, str) or not _WORD_RE.match(value):
        raise RouterInputError(
            f"HAProxy site: {name}={value!r} must be one word of letters, digits and ./:@_-"
        )


def render_config(site: HAProxySite) -> str:
    """Render the configuration text for ``site`` (deterministic: same site, same text)."""
    env = sandboxed_environment(keep_trailing_newline=True)
    admin = site.admin_socket
    if not admin.startswith("/"):
        admin = f"ipv4@{admin}"
    backends: list[tuple[str, tuple[ServerEntry, ...], int | None]] = [
        (site.backend, site.servers, None)
    ]
    if site.route_map:
        for g in site.groups:
            members = tuple(s for s in site.servers if s.group == g)
            backends.append((group_backend(site.backend, g), members, GROUP_BACKEND_WEIGHT))
    fetch = ""
    if site.sticky_cookie:
        fetch = f"req.cook({site.sticky_cookie})"
    elif site.sticky_header:
        fetch = f"req.hdr({site.sticky_header})"
    return env.from_string(_TEMPLATE).render(
        site=site, backends=backends, admin_socket=admin, sticky_fetch=fetch
    )


_SERVER_LINE = re.compile(
    r"^\s*server\s+(\S+)\s+\S+(?:\s+\S+)*?\s+weight\s+(\d+)(\s+disabled)?\s*$"
)


def runtime_state_of(config_text: str) -> dict[str, tuple[int, bool]]:
    """Weight and maintenance of each server line in a rendered config: ``{name: (w, maint)}``."""
    out: dict[str, tuple[int, bool]] = {}
    for line in config_text.splitlines():
        m = _SERVER_LINE.match(line)
        # The weighted backend comes first; a group's own backend repeats its servers
        # with a fixed weight.
        if m and m.group(1) not in out:
            out[m.group(1)] = (int(m.group(2)), bool(m.group(3)))
    return out


def carry_runtime_state(site: HAProxySite, current_text: str | None) -> HAProxySite:
    """``site`` with the weights and maintenance flags the current config file holds.

    The router writes runtime weight changes into the config file; re-provisioning
    keeps them for servers that stay, so it neither reverts a switch nor reloads
    for nothing. New servers keep the weight the site gives them.
    """
    if not current_text:
        return site
    state = runtime_state_of(current_text)
    servers = []
    for s in site.servers:
        if s.name in state:
            weight, maint = state[s.name]
            s = replace(s, weight=weight, maint=maint)
        servers.append(s)
    return site.with_servers(servers)


def _q(text: str) -> str:
    return shlex.quote(text)


def validate_config(conn: Connection, path: str, *, haproxy: str = "haproxy") -> None:
    """Run ``haproxy -c -f path`` on the host; raise :class:`ConfigError` with its output."""
    res = conn.run(f"{_q(haproxy)} -c -q -f {_q(path)}")
    if not res.ok:
        detail = (res.stderr or res.stdout).strip()
        raise ConfigError(f"{conn.host}: {path}: haproxy -c rejected the config:\n{detail}")


def write_atomic(conn: Connection, path: str, text: str) -> None:
    """Write ``text`` to ``path`` on the host: temp file in the same dir, then rename."""
    tmp = f"{path}.cdlib-tmp"
    conn.put(text.encode(), tmp)
    res = conn.run(f"chmod 644 {_q(tmp)} && mv -f {_q(tmp)} {_q(path)}")
    if not res.ok:
        conn.run(f"rm -f {_q(tmp)}")
        raise ConfigError(f"{conn.host}: cannot install {path}: {res.stderr.strip()}")


def read_text(conn: Connection, path: str) -> str | None:
    """The text of ``path`` on the host, or ``None`` when it does not exist."""
    res = conn.run(f"test -e {_q(path)} && cat {_q(path)}")
    if res.exit_code == 1 and not res.stdout:
        return None
    if not res.ok:
        raise ConfigError(f"{conn.host}: cannot read {path}: {res.stderr.strip()}")
    return res.stdout


def reload_if_changed(
    conn: Connection,
    path: str,
    text: str,
    *,
    reload_command: str = "systemctl reload haproxy",
    haproxy: str = "haproxy",
) -> bool:
    """Install ``text`` as HAProxy's config at ``path`` and reload, only when it changed.

    The new text is validated with ``haproxy -c`` in a temporary file first, so
    a bad config never replaces a good one; then it is renamed into place and
    ``reload_command`` runs (a graceful reload: old workers finish their
    sessions). Returns True when something changed.
    """
    if read_text(conn, path) == text:
        return False
    tmp = f"{path}.cdlib-new"
    conn.put(text.encode(), tmp)
    try:
        validate_config(conn, tmp, haproxy=haproxy)
    except ConfigError:
        conn.run(f"rm -f {_q(tmp)}")
        raise
    res = conn.run(f"chmod 644 {_q(tmp)} && mv -f {_q(tmp)} {_q(path)}")
    if not res.ok:
        conn.run(f"rm -f {_q(tmp)}")
        raise ConfigError(f"{conn.host}: cannot install {path}: {res.stderr.strip()}")
    res = conn.run(reload_command)
    if not res.ok:
        raise ConfigError(
            f"{conn.host}: {path} installed but reload failed ({reload_command}): "
            f"{(res.stderr or res.stdout).strip()}"
        )
    return True


__all__ = [
    "GROUP_BACKEND_WEIGHT",
    "ConfigError",
    "HAProxySite",
    "ServerEntry",
    "carry_runtime_state",
    "group_backend",
    "read_text",
    "reload_if_changed",
    "render_config",
    "route_map_path",
    "runtime_state_of",
    "validate_config",
    "write_atomic",
]
