"""Preview routes and sticky canaries driven by the release strategies, on a real HAProxy.

Blue/green with ``preview_header``: the preview check goes through the load balancer with
``X-Release-Preview: green`` and must get the new version (the live group answers the old
one, so the check fails if the route is missing); users under load never get the new
version before the switch; the route is gone after the release and after a rollback.
"""

# ruff: noqa: F811  (the env fixture is imported, then named as a test parameter)
from __future__ import annotations

from pathlib import Path

from cdlib.checks import HttpCheck, Retry
from cdlib.checks.suite import Suite
from cdlib.release import BlueGreen, Canary, CanaryStep, History, rollback
from cdlib.release.hooks import HookEvent, Hooks
from cdlib.traffic.base import StickySpec
from tests.integration.test_release_strategies import (  # noqa: F401 (the fixture)
    Env,
    _bluegreen,
    _release_failed,
    deploy_play,
    env,
)
from tests.integration.traffic.traffic_helpers import Load

RETRY = Retry(attempts=20, timeout=10.0, backoff=0.1, max_backoff=0.5)


def _through_lb(env: Env) -> Suite:
    return Suite(
        "preview via lb",
        (
            HttpCheck(
                url=f"http://{env.lb}/version", body_contains="{{ release_version }}", retry=RETRY
            ),
        ),
    )


def _route_map(env: Env) -> str:
    return (Path(env.spec.workdir) / "cdlib-app-route.map").read_text()


def test_bluegreen_preview_checks_go_through_the_router_with_the_header(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    seen_before_shift: set[str] = set()
    load = Load(env.lb_port, threads=2, max_requests=2000000, max_seconds=90).start()

    def before_shift(_event: HookEvent) -> None:
        seen_before_shift.update(load.result.ok)
        # The route is open now, before any user traffic moved.
        route = env.spec.build().preview_route()
        assert route is not None and route.group == "green"

    release = BlueGreen(
        app="demo",
        version="1.1.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        preview_checks=_through_lb(env),
        preview_header="X-Release-Preview",
        hooks=Hooks(before_shift=before_shift),
        health_timeout=15,
    )
    try:
        load.wait_for(100)
        res = release.run(str(env.inventory))
        load.wait_for(load.total + 100)
    finally:
        result = load.stop()
    assert res.ok, _release_failed(res)
    steps = [r.task for r in res.results if r.host == "release:demo"]
    assert "preview route X-Release-Preview: green" in steps
    assert "remove preview route" in steps
    assert any("through the router" in s for s in steps)
    # Users (no header) never got the new version before the switch.
    assert seen_before_shift == {"1.0.0"}
    assert result.failures == [] and set(result.ok) == {"1.0.0", "1.1.0"}
    assert env.spec.build().preview_route() is None
    assert "preview." not in _route_map(env)


def test_preview_route_removed_when_the_release_fails_and_by_cdlib_rollback(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    failing = Suite(
        "never passes",
        (HttpCheck(url=f"http://{env.lb}/version", body_contains="no such version"),),
    )
    release = BlueGreen(
        app="demo",
        version="1.1.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        preview_checks=failing,
        preview_header="X-Release-Preview",
        health_timeout=15,
    )
    res = release.run(str(env.inventory))
    assert not res.ok
    router = env.spec.build()
    assert router.preview_route() is None and router.state().live == "blue"
    # Left open by a release that died: 'cdlib rollback' removes it.
    router.open_preview("green")
    rec = rollback("demo", state_dir=env.state, to_group="blue")
    assert [s.name for s in rec.steps][-1] == "remove preview route"
    assert rec.steps[-1].detail == "removed"
    assert router.preview_route() is None


def test_canary_refuses_sticky_without_rules_and_stays_on_stable(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        steps=[CanaryStep(20, pause=0.5, analyse=False), 100],
        sticky=StickySpec(cookie="uid"),
        health_timeout=15,
    )
    res = canary.run(str(env.inventory))
    assert not res.ok
    assert any("no sticky rules" in m for m in _release_failed(res)), _release_failed(res)
    # Refused when the router was read, before the deploy: nothing ran on any host.
    assert {r.host for r in res.results} == {"release:demo"}, [
        (r.host, r.task) for r in res.results
    ]
    assert env.spec.build().state().live == "blue"
    latest = History("demo", state_dir=env.state).latest()
    assert latest is not None and latest.outcome == "failed", latest.outcome
