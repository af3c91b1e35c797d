"""The nginx router's pure parts: the writer refuses what nginx cannot hold, the dump
parser reads back what the writer wrote, per-server weights keep group shares, and the
access log is counted per group over a window."""

from __future__ import annotations

import json

import pytest

from cdlib.traffic.base import PreviewRoute, RouterInputError, Target
from cdlib.traffic.nginx_config import (
    NginxSite,
    ServerLine,
    StickyRoute,
    log_metrics,
    parse_dump,
    render_config,
    server_weights,
)

SITE = NginxSite("/var/lib/cdlib/nginx", bind="127.0.0.1:8080")


def test_rendered_config_reads_back_the_same_servers_and_generation() -> None:
    servers = [
        ServerLine("blue", Target("10.0.0.1", 8080), 9),
        ServerLine("blue", Target("app-2.internal", 8080), 9),
        ServerLine("green", Target("10.0.0.3", 8080), 0),
        ServerLine("green", Target("10.0.0.4", 8080), 0, draining=True),
    ]
    text = render_config(SITE, servers, 12)
    assert "worker_shutdown_timeout 30s;" in text
    assert "server 10.0.0.3:8080 weight=1 down; # cdlib-group green" in text
    assert "escape=json" in text and "include" not in text
    loaded = parse_dump(text)
    assert loaded.generation == 12
    assert sorted(loaded.servers, key=lambda s: s.target) == sorted(servers, key=lambda s: s.target)
    assert loaded.shares(("blue", "green")) == {"blue": 100, "green": 0}


@pytest.mark.parametrize(
    "host",
    ["10.0.0.1;include", "a}b", "$host", "-x", "fe80::1", "x" * 300, "a\\b", "'q'", 'a"b'],
)
def test_writer_refuses_target_hosts_nginx_cannot_hold(host: str) -> None:
    with pytest.raises(RouterInputError, match="target host"):
        render_config(SITE, [ServerLine("blue", Target(host, 80), 1)], 1)


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"workdir": "relative/dir"}, "workdir"),
        ({"workdir": "/tmp/a b"}, "workdir"),
        ({"workdir": "/tmp/x;y"}, "workdir"),
        ({"workdir": "/tmp/${x}"}, "workdir"),
        ({"workdir": "/ok", "bind": "127.0.0.1:80;"}, "bind"),
        ({"workdir": "/ok", "bind": "127.0.0.1"}, "bind"),
        ({"workdir": "/ok", "bind": "127.0.0.1:0"}, "bind"),
        ({"workdir": "/ok", "health_path": "/h;x"}, "health_path"),
        ({"workdir": "/ok", "groups": ("blue", "Bad")}, "group name"),
        ({"workdir": "/ok", "worker_shutdown_timeout": 0}, "worker_shutdown_timeout"),
    ],
)
def test_site_refuses_values_nginx_cannot_hold(kwargs: dict[str, object], what: str) -> None:
    with pytest.raises(RouterInputError, match=what):
        NginxSite(**kwargs)  # type: ignore[arg-type]


def test_a_target_in_two_groups_is_refused() -> None:
    t = Target("10.0.0.1", 80)
    with pytest.raises(RouterInputError, match="in two groups"):
        render_config(SITE, [ServerLine("blue", t, 1), ServerLine("green", t, 1)], 1)


def test_server_weights_keep_group_shares_whatever_the_group_sizes() -> None:
    assert server_weights({"blue": 90, "green": 10}, {"blue": 4, "green": 1}) == {
        "blue": 9,
        "green": 4,
    }
    assert server_weights({"blue": 100, "green": 0}, {"blue": 2, "green": 2}) == {
        "blue": 1,
        "green": 0,
    }
    assert server_weights({"blue": 50, "green": 50}, {"blue": 3, "green": 2}) == {
        "blue": 2,
        "green": 3,
    }


def test_a_dump_without_our_generation_is_not_believed() -> None:
    with pytest.raises(ValueError, match="cdlib-generation"):
        parse_dump("http { upstream x { server 10.0.0.1:80; } }")


def test_access_log_is_counted_per_group_within_the_window() -> None:
    def line(t: float, up: str, status: int, rt: str) -> str:
        return json.dumps({"msec": f"{t:.3f}", "upstream": up, "status": str(status),
                           "upstream_time": rt})  # fmt: skip

    lines = [
        line(100.0, "10.0.0.1:80", 200, "0.010"),  # outside the window
        line(105.0, "10.0.0.1:80", 200, "0.020"),
        line(106.0, "10.0.0.2:80", 500, "0.040"),
        line(107.0, "10.0.0.3:80, 10.0.0.2:80", 502, "0.001, 0.060"),  # retried: last answered
        line(108.0, "cdlib_app", 502, ""),  # no upstream at all: no group
        "not json",
    ]
    groups = {"10.0.0.1:80": "blue", "10.0.0.2:80": "green", "10.0.0.3:80": "green"}
    got = log_metrics(lines, groups, since=104.0)
    assert got["blue"] == (1, 0, 20.0)
    assert got["green"][:2] == (2, 2) and got["green"][2] == pytest.approx(50.0)


SERVERS = [
    ServerLine("blue", Target("10.0.0.1", 8080), 4),
    ServerLine("green", Target("10.0.0.3", 8080), 1),
    ServerLine("green", Target("10.0.0.4", 8080), 0, draining=True),
]


def test_sticky_split_and_preview_route_read_back_from_the_config() -> None:
    sticky = StickyRoute("cookie", "uid", "green", "blue", 20)
    preview = PreviewRoute("green", "X-Release-Preview")
    text = render_config(SITE, SERVERS, 3, sticky=sticky, preview=preview)
    assert 'split_clients "${cookie_uid}" $cdlib_sticky_split {' in text
    assert "        20% cdlib_group_green;\n        * cdlib_group_blue;" in text
    assert "map $http_x_release_preview $cdlib_preview {" in text
    assert "proxy_pass http://$cdlib_preview;" in text
    # The per-group upstream holds only that group's servers; draining ones are down.
    green = text.split("upstream cdlib_group_green {")[1].split("}")[0]
    assert "server 10.0.0.3:8080;" in green and "server 10.0.0.4:8080 down;" in green
    assert "10.0.0.1" not in green
    loaded = parse_dump(text)
    assert (loaded.sticky, loaded.preview) == (sticky, preview)
    assert sorted(loaded.servers, key=lambda s: s.target) == SERVERS
    header = render_config(
        SITE, SERVERS, 4, sticky=StickyRoute("header", "X-User", "green", "blue", 5)
    )
    assert 'split_clients "${http_x_user}"' in header
    assert "proxy_pass http://$cdlib_sticky;" in header
    assert parse_dump(header).sticky == StickyRoute("header", "X-User", "green", "blue", 5)


def test_without_sticky_or_preview_the_config_has_neither() -> None:
    text = render_config(SITE, SERVERS, 3)
    assert "split_clients" not in text and "cdlib_group_" not in text
    assert "proxy_pass http://cdlib_app;" in text
    loaded = parse_dump(text)
    assert loaded.sticky is None and loaded.preview is None


@pytest.mark.parametrize("name", ["session-id", "a.b", "a b", "u;id", "${x}"])
def test_sticky_cookie_names_nginx_cannot_read_are_refused(name: str) -> None:
    with pytest.raises(RouterInputError, match="sticky cookie"):
        render_config(SITE, SERVERS, 3, sticky=StickyRoute("cookie", name, "green", "blue", 20))


@pytest.mark.parametrize("name", ["X_Preview", "x.preview", "x preview", "x;y", "x}"])
def test_preview_header_names_nginx_cannot_read_are_refused(name: str) -> None:
    with pytest.raises(RouterInputError, match="header"):
        render_config(SITE, SERVERS, 3, preview=PreviewRoute("green", name))


@pytest.mark.parametrize(
    ("sticky", "what"),
    [
        (StickyRoute("cookie", "uid", "green", "green", 20), "one group"),
        (StickyRoute("cookie", "uid", "green", "red", 20), "red"),
        (StickyRoute("cookie", "uid", "green", "blue", 100), "1..99"),
        (StickyRoute("cookie", "uid", "green", "blue", 0), "1..99"),
    ],
)
def test_sticky_splits_nginx_cannot_hold_are_refused(sticky: StickyRoute, what: str) -> None:
    with pytest.raises(RouterInputError, match=what):
        render_config(SITE, SERVERS, 3, sticky=sticky)
