"""A blue/green switch is one step as HAProxy sees it (issue 20, item 22).

Clients record every version they get through a real HAProxy while the router switches
back and forth many times; none may get the new version, then the old one again, within
a switch, and no request may fail. Load is bounded in count and time, loopback only.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

from tests.integration.traffic.traffic_helpers import HAProxyEnv, SampleApp

SWITCHES = 40
#: Requests (all clients together) between two switches.
BETWEEN = 40
VERSION = {"blue": "1.0.0", "green": "2.0.0"}


@dataclass
class _Switches:
    """Switch k (1-based) goes to ``targets[k-1]``; ``started`` counts calls begun."""

    targets: list[str] = field(default_factory=list)
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Client:
    keep_alive: bool
    #: (switches started when the request was sent, when its answer came, version)
    seen: list[tuple[int, int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _run(client: _Client, port: int, sw: _Switches, stop: threading.Event) -> None:
    deadline = time.monotonic() + 120
    conn: http.client.HTTPConnection | None = None
    for _ in range(200_000):
        if stop.is_set() or time.monotonic() > deadline:
            break
        sent = sw.started
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(
                "GET", "/version", headers={} if client.keep_alive else {"Connection": "close"}
            )
            resp = conn.getresponse()
            body = resp.read().decode().strip()
            if resp.status != 200:
                client.failures.append(f"HTTP {resp.status} sent {sent} now {sw.started}")
            else:
                client.seen.append((sent, sw.started, body))
            if not client.keep_alive or resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            client.failures.append(f"{type(exc).__name__}: {exc} sent {sent} now {sw.started}")
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def _flaps(client: _Client, sw: _Switches) -> list[str]:
    """Each time the client got the old version after it had got the new one of the same
    switch (a request sent before the next switch began)."""
    out = []
    new_seen_in = 0  # the switch whose new version this client has already been served
    for i, (sent, received, version) in enumerate(client.seen):
        # Sent after switch k began and served by its new group: k's new version seen.
        if sent == received >= 1 and version == VERSION[sw.targets[sent - 1]]:
            new_seen_in = max(new_seen_in, sent)
        if sent == new_seen_in and sent >= 1 and version != VERSION[sw.targets[sent - 1]]:
            out.append(f"response {i}: switch {sent} to {sw.targets[sent - 1]}: got {version}")
    return out


def test_switch_never_serves_old_after_new_under_load(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
        assert router.wait_healthy(group, timeout=10).healthy
    router.switch("blue")
    sw = _Switches()
    clients = [_Client(keep_alive=i % 2 == 0) for i in range(4)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=_run, args=(c, haproxy.port, sw, stop), daemon=True)
        for c in clients
    ]
    for t in threads:
        t.start()

    def total() -> int:
        return sum(len(c.seen) + len(c.failures) for c in clients)

    def wait(n: int) -> None:
        end = time.monotonic() + 30
        while total() < n and time.monotonic() < end:
            time.sleep(0.002)

    try:
        wait(BETWEEN)
        for k in range(SWITCHES):
            to = "green" if k % 2 == 0 else "blue"
            with sw.lock:
                sw.targets.append(to)
                sw.started += 1
            assert router.switch(to).live == to
            wait(total() + BETWEEN)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    failures = [f for c in clients for f in c.failures]
    flaps = [f for c in clients for f in _flaps(c, sw)]
    served = sum(len(c.seen) for c in clients)
    assert failures == [], failures[:5]
    assert served >= SWITCHES * BETWEEN
    assert flaps == [], f"{len(flaps)} new->old within a switch, e.g. {flaps[:5]}"
    # Both versions were really served.
    assert {v for c in clients for _, _, v in c.seen} == {"1.0.0", "2.0.0"}


def test_route_survives_restart_and_a_fresh_router_finds_it(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    from cdlib.traffic.haproxy import HAProxyRouter
    from cdlib.traffic.haproxy_runtime import RuntimeClient

    router = haproxy.router
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
        assert router.wait_healthy(group, timeout=10).healthy
    assert router.switch("green").live == "green"
    haproxy.process.stop()
    haproxy.process.start()
    fresh = HAProxyRouter(RuntimeClient(haproxy.site.admin_socket))
    assert fresh.route_map() == haproxy.site.route_map
    assert fresh.state().live == "green"
    assert fresh.wait_healthy("green", timeout=10).healthy
    conn = http.client.HTTPConnection("127.0.0.1", haproxy.port, timeout=10)
    try:
        seen = set()
        for _ in range(6):
            conn.request("GET", "/version")
            seen.add(conn.getresponse().read().decode().strip())
    finally:
        conn.close()
    assert seen == {"2.0.0"}
    # A canary split from there, then back in one step.
    assert dict(fresh.set_weights({"blue": 90, "green": 10}).weights) == {"blue": 90, "green": 10}
    assert fresh.switch("blue").live == "blue"
