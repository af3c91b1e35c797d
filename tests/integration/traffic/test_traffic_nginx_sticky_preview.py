"""Sticky canary splits and preview routes through a real nginx (the nginx router's
generated ``split_clients`` and header ``map``), under bounded load.

The same checks as the HAProxy versions: 50 clients with their own cookie make 1,000
requests at a 20 % canary and none gets both versions; a switch back moves every client;
a preview header reaches only the idle group while users never do. Loopback only.
"""

from __future__ import annotations

import shutil

import pytest

from cdlib.traffic.base import RouterFeatureError, RouterInputError, StickySpec
from cdlib.traffic.nginx import NginxRouter
from cdlib.traffic.nginx_config import parse_dump
from tests.integration.traffic.test_traffic_nginx import NginxEnv, nginx  # noqa: F401
from tests.integration.traffic.test_traffic_sticky_preview import (
    CLIENTS,
    REQUESTS,
    VERSION,
    _clients,
    _get,
)
from tests.integration.traffic.traffic_helpers import Load, SampleApp

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")


def _ready(router: NginxRouter, apps: dict[str, list[SampleApp]]) -> None:
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
        assert router.wait_healthy(group, timeout=10).healthy
    assert router.switch("blue").live == "blue"


def test_sticky_canary_keeps_each_client_on_one_version_and_rollback_moves_all(
    nginx: NginxEnv,  # noqa: F811
    apps: dict[str, list[SampleApp]],
) -> None:
    router, port = nginx.router, nginx.port
    _ready(router, apps)
    sticky = StickySpec(cookie="uid")
    state = router.set_sticky_weights({"blue": 90, "green": 10}, sticky)
    assert state.sticky and dict(state.weights) == {"blue": 90, "green": 10}
    at10 = _clients(port, 200)
    state = router.set_sticky_weights({"blue": 80, "green": 20}, sticky)
    assert state.sticky and dict(state.weights) == {"blue": 80, "green": 20}
    assert router.state() == state
    assert parse_dump(nginx.conf.read_text()).sticky is not None
    at20 = _clients(port, REQUESTS)
    bodies = {b for seen in at20.values() for b in seen}
    assert bodies <= set(VERSION.values()), bodies - set(VERSION.values())
    assert sum(len(s) for s in at20.values()) == REQUESTS
    both = [c for c, seen in at20.items() if len(set(seen)) > 1]
    assert both == [], f"clients that saw both versions at 20%: {both}"
    on_green = {c for c, seen in at20.items() if seen[0] == VERSION["green"]}
    assert 0 < len(on_green) < CLIENTS
    # Raising the share kept every client that was on the canary at 10 % there.
    was_green = {c for c, seen in at10.items() if seen and seen[0] == VERSION["green"]}
    assert was_green <= on_green
    # set_weights(sticky=True) keeps the split's cookie.
    assert router.set_weights({"blue": 70, "green": 30}, sticky=True).sticky
    # Rollback: one switch, and stuck clients get the stable version with everyone.
    assert router.switch("blue").live == "blue"
    assert not router.state().sticky
    after = _clients(port, 200)
    assert {b for seen in after.values() for b in seen} == {VERSION["blue"]}


def test_sticky_names_nginx_cannot_read_are_refused_before_any_change(
    nginx: NginxEnv,  # noqa: F811
    apps: dict[str, list[SampleApp]],
) -> None:
    router = nginx.router
    _ready(router, apps)
    before = nginx.conf.read_text()
    with pytest.raises(RouterFeatureError, match="session-id"):
        router.set_sticky_weights({"blue": 90, "green": 10}, StickySpec(cookie="session-id"))
    with pytest.raises(RouterFeatureError, match="no sticky split"):
        router.set_weights({"blue": 90, "green": 10}, sticky=True)
    with pytest.raises(RouterInputError, match="X_Preview"):
        router.open_preview("green", header="X_Preview")
    assert nginx.conf.read_text() == before
    assert router.state().live == "blue"


def test_preview_header_reaches_only_the_idle_group_and_users_never_do(
    nginx: NginxEnv,  # noqa: F811
    apps: dict[str, list[SampleApp]],
) -> None:
    router, port = nginx.router, nginx.port
    _ready(router, apps)
    assert router.preview_route() is None
    route = router.open_preview("green")
    assert (route.group, route.header) == ("green", "X-Release-Preview")
    assert router.preview_route() == route
    assert router.state().live == "blue"
    load = Load(port, threads=2, max_requests=2000, max_seconds=60, retry_stale=True).start()
    previews: list[str] = []
    try:
        load.wait_for(50)
        for _ in range(200):
            previews.append(_get(port, {"X-Release-Preview": "green"}))
        # A header naming the live group, or no group, is an ordinary request.
        other = [_get(port, {"X-Release-Preview": v}) for v in ("blue", "live", "x")]
        load.wait_for(load.total + 50)
    finally:
        result = load.stop()
    assert set(previews) == {VERSION["green"]}
    assert result.failures == [], result.failures[:5]
    assert result.total >= 100 and set(result.ok) == {VERSION["blue"]}, result.ok
    assert set(other) == {VERSION["blue"]}
    # A change of weights keeps the preview route (same config, one reload).
    router.switch("blue")
    assert router.preview_route() == route
    # Closed: the header no longer reaches green, and nginx -T shows no preview map.
    assert router.close_preview() is True
    assert router.preview_route() is None
    assert router.close_preview() is False
    assert {_get(port, {"X-Release-Preview": "green"}) for _ in range(20)} == {VERSION["blue"]}
    assert "cdlib_preview" not in nginx.conf.read_text()
