"""Zero downtime, measured: steady load through a real HAProxy while traffic moves.

The load is bounded (request count and time) and loopback only. Half of the
client threads use keep-alive, half open a new connection per request; both
must see every request succeed.
"""

from __future__ import annotations

from tests.integration.traffic.traffic_helpers import HAProxyEnv, Load, SampleApp

MIN_REQUESTS = 2000
#: Requests that must pass between two steps, so every phase carries load.
PER_STEP = 150


def test_switches_and_weight_steps_under_load_drop_nothing(
    haproxy: HAProxyEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = haproxy.router
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
        assert router.wait_healthy(group, timeout=10).healthy
    router.switch("blue")

    steps: list[tuple[str, object]] = [
        ("switch", "green"),
        ("switch", "blue"),
        ("weights", {"blue": 100, "green": 0}),
        ("weights", {"blue": 90, "green": 10}),
        ("weights", {"blue": 50, "green": 50}),
        ("weights", {"blue": 0, "green": 100}),
        # Scale the live group in and out: drain before removal, no failure.
        ("deregister", apps["green"][1]),
        ("register", apps["green"][1]),
        ("switch", "blue"),
    ]
    load = Load(haproxy.port, threads=4, max_requests=8000, max_seconds=120).start()
    seen_by_step: list[tuple[str, int]] = []
    try:
        load.wait_for(PER_STEP)
        for kind, arg in steps:
            if kind == "switch":
                assert isinstance(arg, str)
                assert router.switch(arg).live == arg
            elif kind == "weights":
                assert isinstance(arg, dict)
                assert dict(router.set_weights(arg).weights) == arg
            elif kind == "deregister":
                assert isinstance(arg, SampleApp)
                router.deregister("green", [arg.target], timeout=10)
            else:
                assert isinstance(arg, SampleApp)
                router.register("green", [arg.target], timeout=10)
            seen_by_step.append(
                (f"{kind} {arg if not isinstance(arg, SampleApp) else arg.target}", load.total)
            )
            load.wait_for(load.total + PER_STEP)
        load.wait_for(MIN_REQUESTS, timeout=60)
    finally:
        result = load.stop()

    report = f"{result.total} requests, {len(result.failures)} failed: {result.failures[:5]}"
    print(report, seen_by_step)
    assert result.total >= MIN_REQUESTS, report
    assert result.failures == [], report
    # Traffic really moved: both versions answered.
    assert result.ok["1.0.0"] > 0 and result.ok["2.0.0"] > 0, result.ok
    assert set(result.ok) == {"1.0.0", "2.0.0"}, result.ok
