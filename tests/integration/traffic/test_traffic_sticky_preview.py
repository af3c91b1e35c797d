"""Sticky canary splits and preview routes through a real HAProxy, under bounded load.

Sticky: 50 clients, each with its own cookie, make 1,000 requests while a canary sends
20 % to green; no client may get both versions, and after a switch back (a rollback)
every client, stuck ones included, gets the stable version. Preview: requests carrying
``X-Release-Preview: green`` reach only green while users (no header) keep getting blue.
Loopback only; load bounded in count and time.
"""

from __future__ import annotations

import http.client
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdlib.traffic.base import RouterFeatureError, StickySpec
from cdlib.traffic.haproxy import HAProxyRouter
from cdlib.traffic.local import LocalHAProxy
from tests.integration.traffic.traffic_helpers import SampleApp, free_port

VERSION = {"blue": "1.0.0", "green": "2.0.0"}
CLIENTS = 50
REQUESTS = 1000


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[LocalHAProxy, int]]:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (scripts/test installs it on CI)")
    port = free_port()
    lb = LocalHAProxy(
        tmp_path,
        bind=f"127.0.0.1:{port}",
        check_inter_ms=200,
        check_rise=1,
        check_fall=3,
        sticky_cookie="uid",
    )
    lb.start()
    try:
        yield lb, port
    finally:
        lb.stop()


def _ready(router: HAProxyRouter, apps: dict[str, list[SampleApp]]) -> None:
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
        assert router.wait_healthy(group, timeout=10).healthy
    assert router.switch("blue").live == "blue"


def _get(port: int, headers: dict[str, str]) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/version", headers={**headers, "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode().strip()
        return body if resp.status == 200 else f"HTTP {resp.status}"
    finally:
        conn.close()


def _clients(port: int, total: int, workers: int = 5) -> dict[int, list[str]]:
    """``total`` requests spread over CLIENTS cookies by ``workers`` threads."""
    seen: dict[int, list[str]] = {c: [] for c in range(CLIENTS)}
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    def work(w: int) -> None:
        for i in range(w, total, workers):
            if time.monotonic() > deadline:
                return
            client = i % CLIENTS
            try:
                body = _get(port, {"Cookie": f"uid=client-{client}"})
            except (OSError, http.client.HTTPException) as exc:
                body = f"{type(exc).__name__}: {exc}"
            with lock:
                seen[client].append(body)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    return seen


def test_sticky_canary_keeps_each_client_on_one_version_and_rollback_moves_all(
    local: tuple[LocalHAProxy, int], apps: dict[str, list[SampleApp]]
) -> None:
    lb, port = local
    router = lb.router
    _ready(router, apps)
    sticky = StickySpec(cookie="uid")
    state = router.set_sticky_weights({"blue": 90, "green": 10}, sticky)
    assert state.sticky and dict(state.weights) == {"blue": 90, "green": 10}
    at10 = _clients(port, 200)
    state = router.set_sticky_weights({"blue": 80, "green": 20}, sticky)
    assert state.sticky and dict(state.weights) == {"blue": 80, "green": 20}
    at20 = _clients(port, REQUESTS)
    bodies = {b for seen in at20.values() for b in seen}
    assert bodies <= set(VERSION.values()), bodies - set(VERSION.values())
    assert sum(len(s) for s in at20.values()) == REQUESTS
    both = [c for c, seen in at20.items() if len(set(seen)) > 1]
    assert both == [], f"clients that saw both versions at 20%: {both}"
    on_green = {c for c, seen in at20.items() if seen[0] == VERSION["green"]}
    # About a fifth of the clients (hash buckets), and never none or all.
    assert 0 < len(on_green) < CLIENTS
    # Raising the share kept every client that was on the canary at 10 % there.
    was_green = {c for c, seen in at10.items() if seen and seen[0] == VERSION["green"]}
    assert was_green <= on_green
    # Rollback: one switch, and stuck clients get the stable version with everyone.
    assert router.switch("blue").live == "blue"
    assert not router.state().sticky
    after = _clients(port, 200)
    assert {b for seen in after.values() for b in seen} == {VERSION["blue"]}


def test_sticky_refused_without_matching_rules(
    local: tuple[LocalHAProxy, int], apps: dict[str, list[SampleApp]]
) -> None:
    lb, _port = local
    _ready(lb.router, apps)
    with pytest.raises(RouterFeatureError, match="cookie uid, not cookie session"):
        lb.router.set_sticky_weights({"blue": 90, "green": 10}, StickySpec(cookie="session"))
    assert lb.router.state().live == "blue"


def test_preview_header_reaches_only_the_idle_group_and_users_never_do(
    local: tuple[LocalHAProxy, int], apps: dict[str, list[SampleApp]]
) -> None:
    lb, port = local
    router = lb.router
    _ready(router, apps)
    assert router.preview_route() is None
    route = router.open_preview("green")
    assert (route.group, route.header) == ("green", "X-Release-Preview")
    assert router.preview_route() == route
    assert router.state().live == "blue"
    users: list[str] = []
    previews: list[str] = []
    stop = threading.Event()

    def user_load() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and len(users) < 2000 and time.monotonic() < deadline:
            users.append(_get(port, {}))

    t = threading.Thread(target=user_load, daemon=True)
    t.start()
    try:
        for _ in range(200):
            previews.append(_get(port, {"X-Release-Preview": "green"}))
        # A header naming the live group, or no group, is an ordinary request.
        other = [_get(port, {"X-Release-Preview": v}) for v in ("blue", "live", "x")]
    finally:
        stop.set()
        t.join(60)
    assert set(previews) == {VERSION["green"]}
    assert len(users) >= 100 and set(users) == {VERSION["blue"]}
    assert set(other) == {VERSION["blue"]}
    # Closed: the header no longer reaches green.
    assert router.close_preview() is True
    assert router.preview_route() is None
    assert router.close_preview() is False
    assert {_get(port, {"X-Release-Preview": "green"}) for _ in range(20)} == {VERSION["blue"]}
    # The route map file (what a restart loads) holds no preview entry either.
    assert "preview." not in Path(lb.site.route_map or "").read_text()
