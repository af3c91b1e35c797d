"""Operators acting during a running canary, against a real HAProxy: weights changed by
hand through the runtime API, and ``cdlib rollback`` from another shell. The release
stops without touching traffic again and is recorded as interrupted."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import cdlib
from cdlib.release import Canary, CanaryStep, History
from cdlib.traffic.haproxy import HAProxyRouter
from cdlib.traffic.haproxy_parse import server_name
from tests.integration.test_release_strategies import Env, _bluegreen, deploy_play, env

__all__ = ["env"]  # the fixture, re-used


def _wait(pred: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start_canary(env: Env, pause: float) -> tuple[threading.Thread, list[cdlib.RunResult]]:
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        health_timeout=15,
        steps=[CanaryStep(10, pause=pause, analyse=False), CanaryStep(50, analyse=False), 100],
    )
    out: list[cdlib.RunResult] = []
    t = threading.Thread(target=lambda: out.append(canary.run(str(env.inventory))))
    t.start()
    router = env.spec.build()
    _wait(lambda: router.state().weights.get("green") == 10, "the canary at 10%")
    return t, out


def test_weights_changed_by_hand_mid_pause_stop_the_canary(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    t, out = _start_canary(env, pause=3.0)
    router = env.spec.build()
    assert isinstance(router, HAProxyRouter)
    # The operator, by hand on the admin socket: green down to a trickle.
    for group, weight in (("blue", 256), ("green", 10)):
        for target in router.targets(group):
            router.runtime.execute(
                f"set server {router.backend}/{server_name(group, target)} weight {weight}"
            )
    by_hand = dict(router.state().weights)
    assert by_hand != {"blue": 90, "green": 10}
    t.join(60)
    assert out and not out[0].ok
    assert dict(router.state().weights) == by_hand  # left as the operator set it
    rec = History("demo", state_dir=env.state).latest()
    assert rec is not None and rec.version == "2.0.0" and rec.outcome == "interrupted"
    assert "expected weights {'blue': 90, 'green': 10}" in rec.reason
    assert f"found {by_hand}" in rec.reason
    # The read-back happens at the start of the next step, which sets nothing.
    [next_step] = [s for s in rec.steps if s.name.startswith("traffic 50%")]
    assert next_step.outcome == "failed" and "changed outside this release" in next_step.detail


def test_rollback_from_another_shell_interrupts_the_running_canary(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    t, out = _start_canary(env, pause=30.0)
    cli = subprocess.run(
        [sys.executable, "-m", "cdlib", "rollback", "demo", "--state-dir", env.state],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "traffic -> blue" in cli.stdout and "interrupted running release" in cli.stdout
    t.join(30)  # well before the 30 s pause would end
    assert not t.is_alive() and out and not out[0].ok
    router = env.spec.build()
    assert dict(router.state().weights) == {"blue": 100, "green": 0}
    recs = History("demo", state_dir=env.state).all()
    canary = next(r for r in recs if r.version == "2.0.0")
    back = next(r for r in recs if r.strategy == "rollback")
    assert canary.outcome == "interrupted" and back.id in canary.reason
    assert not any(s.name.startswith("roll back") for s in canary.steps)  # it left traffic
    assert back.outcome == "succeeded" and canary.id in back.reason
