"""The router value types, input checks, config rendering and AWS retry helpers."""

from __future__ import annotations

from typing import Any

import pytest

from cdlib.traffic.aws_api import call, check_arn, until
from cdlib.traffic.base import (
    HealthReport,
    ReadBackError,
    RouterInputError,
    RouterState,
    Target,
    TargetHealth,
    check_group_name,
    check_weights,
)
from cdlib.traffic.haproxy_config import HAProxySite, ServerEntry, render_config


def test_router_state_live_only_when_one_group_has_weight() -> None:
    assert RouterState.from_weights({"blue": 100, "green": 0}).live == "blue"
    split = RouterState.from_weights({"blue": 90, "green": 10})
    assert split.live is None
    assert split.share("green") == pytest.approx(0.1)
    assert RouterState.from_weights({"blue": 0}).share("blue") == 0.0


def test_check_weights_fills_missing_groups_and_names_the_problem() -> None:
    assert check_weights({"green": 5}, ["blue", "green"], maximum=999) == {"blue": 0, "green": 5}
    with pytest.raises(RouterInputError, match="unknown group 'red'"):
        check_weights({"red": 1}, ["blue"], maximum=999)
    with pytest.raises(RouterInputError, match=r"blue: weight -1 is not in 0\.\.999"):
        check_weights({"blue": -1}, ["blue"], maximum=999)
    with pytest.raises(RouterInputError, match="not an integer"):
        check_weights({"blue": True}, ["blue"], maximum=999)
    with pytest.raises(RouterInputError, match="all groups have weight 0"):
        check_weights({"blue": 0}, ["blue"], maximum=999)
    with pytest.raises(RouterInputError, match="empty"):
        check_weights({}, ["blue"], maximum=999)


def test_group_names_and_targets() -> None:
    assert check_group_name("canary-2") == "canary-2"
    for bad in ("Blue", "b_g", "", "1x", "x" * 33):
        with pytest.raises(RouterInputError, match="group name"):
            check_group_name(bad)
    assert Target.parse("10.0.0.1:80") == Target("10.0.0.1", 80)
    with pytest.raises(RouterInputError, match="host:port"):
        Target.parse("10.0.0.1")
    with pytest.raises(RouterInputError, match=r"not in 1\.\.65535"):
        Target("h", 0)


def test_health_report_describes_unhealthy_targets() -> None:
    report = HealthReport(
        "green",
        (
            TargetHealth(Target("a", 1), True, "healthy"),
            TargetHealth(Target("b", 1), False, "unhealthy", "Target.Timeout"),
        ),
    )
    assert not report.healthy
    assert report.describe() == "group green: 1/2 unhealthy\n  b:1: unhealthy Target.Timeout"
    assert not HealthReport("green", ()).healthy
    assert "no targets" in HealthReport("green", ()).describe()


def test_render_config_is_deterministic_and_has_the_servers() -> None:
    site = HAProxySite(bind="127.0.0.1:8080", admin_socket="/run/haproxy/admin.sock")
    site = site.with_servers(
        [
            ServerEntry("green", Target("10.0.0.2", 80), weight=10),
            ServerEntry("blue", Target("10.0.0.1", 80), weight=90, maint=True),
        ]
    )
    text = render_config(site)
    assert text == render_config(site)
    lines = [ln.strip() for ln in text.splitlines()]
    blue = next(ln for ln in lines if ln.startswith("server blue_"))
    assert blue.startswith("server blue_10.0.0.1:80 10.0.0.1:80 check")
    assert blue.endswith("weight 90 disabled")
    assert lines.index(blue) < lines.index(next(ln for ln in lines if "green_" in ln))
    assert "stats socket /run/haproxy/admin.sock mode 600 level admin" in lines
    assert "option redispatch 1" in lines
    tcp = render_config(HAProxySite(bind="127.0.0.1:8080", admin_socket="127.0.0.1:9999"))
    assert "stats socket ipv4@127.0.0.1:9999 mode 600 level admin" in tcp


def test_site_refuses_values_that_would_inject_config() -> None:
    with pytest.raises(RouterInputError, match="bind="):
        HAProxySite(bind="127.0.0.1:80\n    option foo", admin_socket="/s")
    with pytest.raises(RouterInputError, match="group 'red' is not in"):
        HAProxySite(
            bind="127.0.0.1:80", admin_socket="/s", servers=(ServerEntry("red", Target("h", 1)),)
        )
    with pytest.raises(RouterInputError, match=r"not in 0\.\.256"):
        ServerEntry("blue", Target("h", 1), weight=257)


class _Throttled(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


def test_call_backs_off_while_throttled_then_succeeds() -> None:
    attempts: list[int] = []

    def flaky(**kw: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _Throttled("Throttling")
        return f"ok {kw['x']}"

    assert call(flaky, x=1) == "ok 1"
    assert len(attempts) == 3


def test_call_does_not_retry_other_errors() -> None:
    attempts: list[int] = []

    def broken(**_: Any) -> None:
        attempts.append(1)
        raise _Throttled("ValidationError")

    with pytest.raises(_Throttled):
        call(broken)
    assert len(attempts) == 1


def test_until_reads_back_or_raises() -> None:
    seen = iter([False, False, True])
    until(lambda: next(seen), timeout=5, what="x")
    with pytest.raises(ReadBackError, match=r"never: not visible after 0\.3s"):
        until(lambda: False, timeout=0.3, what="never")


def test_check_arn() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/0123abcd"
    assert check_arn("targetgroup", arn, "x") == arn
    with pytest.raises(RouterInputError, match="blue: 'arn:aws:ec2' is not an ELBv2 listener"):
        check_arn("listener", "arn:aws:ec2", "blue")


def test_carry_runtime_state_keeps_weights_of_servers_that_stay() -> None:
    from cdlib.traffic.haproxy_config import carry_runtime_state, runtime_state_of

    base = HAProxySite(bind="127.0.0.1:8080", admin_socket="/s")
    running = base.with_servers(
        [
            ServerEntry("blue", Target("10.0.0.1", 80), weight=0, maint=True),
            ServerEntry("green", Target("10.0.0.2", 80), weight=100),
        ]
    )
    text = render_config(running)
    assert runtime_state_of(text) == {
        "blue_10.0.0.1:80": (0, True),
        "green_10.0.0.2:80": (100, False),
    }
    wanted = base.with_servers(
        [
            ServerEntry("blue", Target("10.0.0.1", 80), weight=100),
            ServerEntry("green", Target("10.0.0.2", 80), weight=0),
            ServerEntry("green", Target("10.0.0.3", 80), weight=0),
        ]
    )
    merged = carry_runtime_state(wanted, text)
    assert [(s.name, s.weight, s.maint) for s in merged.servers] == [
        ("blue_10.0.0.1:80", 0, True),
        ("green_10.0.0.2:80", 100, False),
        ("green_10.0.0.3:80", 0, False),
    ]
    assert carry_runtime_state(wanted, None) == wanted


def test_importing_routers_does_not_import_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, cdlib.traffic, cdlib.tasks.traffic; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_haproxy_shares_follow_groups_not_servers() -> None:
    from cdlib.traffic.haproxy import _percent, _server_weights

    # 4 blue servers and 1 green: 90/10 of requests, not of servers.
    per = _server_weights({"blue": 90, "green": 10}, {"blue": 4, "green": 1})
    assert per["blue"] == 256 and 1 <= per["green"] <= 256
    assert _percent({"blue": per["blue"] * 4, "green": per["green"]}) == {"blue": 90, "green": 10}
    assert _server_weights({"blue": 100, "green": 0}, {"blue": 2, "green": 2}) == {
        "blue": 256,
        "green": 0,
    }
    # A group without servers gets nothing, whatever was asked.
    assert _server_weights({"blue": 50, "green": 50}, {"blue": 0, "green": 1})["blue"] == 0
    assert _percent({"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert _percent({"a": 0, "b": 0}) == {"a": 0, "b": 0}
    for w in range(1, 100):
        per = _server_weights({"blue": 100 - w, "green": w}, {"blue": 3, "green": 2})
        got = _percent({"blue": per["blue"] * 3, "green": per["green"] * 2})
        assert got == {"blue": 100 - w, "green": w}, (w, per, got)


def test_route_map_gives_each_group_a_backend_and_one_switch_point() -> None:
    from cdlib.traffic.haproxy_config import route_map_path, runtime_state_of

    site = HAProxySite(
        bind="127.0.0.1:8080", admin_socket="/s", route_map_dir="/var/lib/lb"
    ).with_servers([ServerEntry("blue", Target("10.0.0.1", 80), weight=90)])
    text = render_config(site)
    lines = [ln.strip() for ln in text.splitlines()]
    assert (
        site.route_map
        == route_map_path("/var/lib/lb", "app")
        == ("/var/lib/lb/cdlib-app-route.map")
    )
    assert "use_backend %[str(live),map(/var/lib/lb/cdlib-app-route.map,app)]" in lines
    assert {"backend app", "backend app_blue", "backend app_green"} <= set(lines)
    # The group's own backend repeats the server at a fixed weight; the weighted one rules.
    blue = [ln for ln in lines if ln.startswith("server blue_")]
    assert [ln.split()[-1] for ln in blue] == ["90", "1"]
    assert runtime_state_of(text) == {"blue_10.0.0.1:80": (90, False)}
    # Without it the config is as before: one backend, no map.
    plain = render_config(HAProxySite(bind="127.0.0.1:8080", admin_socket="/s"))
    assert "use_backend" not in plain and "backend app_blue" not in plain
