"""The nginx router's pure parts: the writer refuses what nginx cannot hold, the dump
parser reads back what the writer wrote, per-server weights keep group shares, and the
access log is counted per group over a window."""

from __future__ import annotations

import json

import pytest

from cdlib.traffic.base import RouterInputError, Target
from cdlib.traffic.nginx_config import (
    NginxSite,
    ServerLine,
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
