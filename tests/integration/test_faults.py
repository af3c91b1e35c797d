"""Faults in the middle of a release: the control process killed, a second release at the
same time, HAProxy restarting, the load-balancer API throttling. Traffic always goes to
the old or the new version, and ``cdlib status`` tells the truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from cdlib.release import Canary, CanaryStep, Gate, History, rollback
from cdlib.release.ops import status
from cdlib.traffic.local import LocalHAProxy
from tests.integration.test_release_strategies import Env, _bluegreen, deploy_play, env
from tests.integration.traffic.traffic_helpers import Load

REPO = Path(__file__).resolve().parents[2]
__all__ = ["env"]  # the fixture, re-used


def _wait(pred: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _canary_script(env: Env, tmp: Path, version: str, steps: str) -> Path:
    script = tmp / "canary_run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(REPO / "playbooks")!r})
        from sampleapp_local import deploy
        import json
        from cdlib.release import Canary, CanaryStep, Thresholds
        from cdlib.release.routers import spec_from_json
        spec = spec_from_json(json.loads({json.dumps(env.spec.to_json())!r}))
        res = Canary(app="demo", version={version!r}, router=spec, state_dir={env.state!r},
                     deploy=deploy, steps={steps}, health_timeout=15,
                     thresholds=Thresholds(min_requests=1), on_inconclusive="continue",
                     ).run({str(env.inventory)!r})
        sys.exit(res.exit_code)
    """)
    )
    return script


def test_control_process_killed_mid_canary(env: Env, tmp_path: Path) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    script = _canary_script(
        env, tmp_path, "2.0.0", "[CanaryStep(25, pause=60.0), CanaryStep(50, pause=60.0), 100]"
    )
    load = Load(env.lb_port, threads=2, max_requests=200000, max_seconds=120).start()
    try:
        proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO)

        def at_25() -> bool:
            rec = History("demo", state_dir=env.state).latest()
            return bool(rec and rec.version == "2.0.0" and rec.weights.get("green") == 25)

        _wait(lambda: at_25() or proc.poll() is not None, "the canary to reach 25%")
        assert proc.poll() is None, "the canary process died early"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        n = load.total
        load.wait_for(n + 100)
        st = status("demo", state_dir=env.state)
        assert st.latest is not None and st.latest.unfinished
        assert st.lock_owner is not None and f"pid {proc.pid}" in st.lock_owner
        assert st.lock_stale
        assert st.weights == {"blue": 75, "green": 25}  # read back from HAProxy
        cli = subprocess.run(
            [sys.executable, "-m", "cdlib", "status", "demo", "--state-dir", env.state],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "UNFINISHED" in cli.stdout and "STALE" in cli.stdout, cli.stdout
        # A new release is refused while the stale lock stands, naming its owner.
        second = _bluegreen(env, "3.0.0").run(str(env.inventory))
        assert not second.ok
        assert any(f"pid {proc.pid}" in r.msg and "STALE" in r.msg for r in second.results)
        rec = rollback("demo", state_dir=env.state)
        assert rec.new_group == "blue"
        n = load.total
        load.wait_for(n + 100)
    finally:
        result = load.stop()
    assert result.failures == []
    assert status("demo", state_dir=env.state).weights == {"blue": 100, "green": 0}
    killed = next(r for r in History("demo", state_dir=env.state).all() if r.version == "2.0.0")
    assert killed.outcome == "aborted" and "interrupted" in killed.reason
    assert status("demo", state_dir=env.state).lock_owner is None


def test_concurrent_release_is_refused_with_holder_named(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    gated = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        health_timeout=15,
        steps=[CanaryStep(10, gate=Gate("hold", timeout=60, poll=0.1), analyse=False), 100],
    )
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(gated.run(str(env.inventory))))
    t.start()
    _wait(
        lambda: (
            status("demo", state_dir=env.state).lock_owner is not None
            and status("demo", state_dir=env.state).weights.get("green") == 10
        ),
        "the gate",
    )
    other = _bluegreen(env, "9.9.9").run(str(env.inventory))
    msgs = [r.msg for r in other.results if r.status.value == "failed"]
    assert msgs and "release lock of 'demo' is held by" in msgs[0]
    assert f"pid {os.getpid()}" in msgs[0] and "STALE" not in msgs[0]
    subprocess.run(
        [sys.executable, "-m", "cdlib", "abort", "demo", "--state-dir", env.state],
        check=True,
        capture_output=True,
        timeout=30,
    )
    t.join(60)
    assert out and not out[0].ok
    assert status("demo", state_dir=env.state).weights == {"blue": 100, "green": 0}
    latest = History("demo", state_dir=env.state).latest()
    assert latest is not None and latest.outcome == "aborted"
    assert "cdlib abort" in latest.reason and "traffic rolled back to blue" in latest.reason


def test_haproxy_restart_during_canary_restores_weights(env: Env, tmp_path: Path) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    router = env.spec.build()
    gated = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        health_timeout=15,
        steps=[CanaryStep(25, gate=Gate("hold", timeout=60, poll=0.1), analyse=False), 100],
    )
    out: list[Any] = []
    load = Load(env.lb_port, threads=2, max_requests=200000, max_seconds=120).start()
    try:
        t = threading.Thread(target=lambda: out.append(gated.run(str(env.inventory))))
        t.start()
        _wait(lambda: status("demo", state_dir=env.state).weights.get("green") == 25, "25%")
        load.wait_for(load.total + 100)
        before_restart = list(load.result.failures)
        # Restart HAProxy from its persisted files (config with servers, state file).
        _restart_haproxy(env)
        _wait(lambda: _weights(router) == {"blue": 75, "green": 25}, "weights back", 20)
        during_restart = len(load.result.failures)
        load.wait_for(load.total + 200)
        after_restart = len(load.result.failures)
        subprocess.run(
            [sys.executable, "-m", "cdlib", "promote", "demo", "--state-dir", env.state],
            check=True,
            capture_output=True,
            timeout=30,
        )
        t.join(60)
        load.wait_for(load.total + 100)
    finally:
        result = load.stop()
    assert out and out[0].ok, [r.msg for r in out[0].results if r.status.value == "failed"]
    assert router.state().live == "green"
    # Requests fail only while HAProxy is down (a stop/start, documented); none before it,
    # none once it is back with the restored weights.
    assert before_restart == []
    assert after_restart == during_restart
    assert len(result.failures) == during_restart
    assert set(result.ok) >= {"1.0.0", "2.0.0"}


def _weights(router: Any) -> dict[str, int] | None:
    try:
        return dict(router.state().weights)
    except Exception:
        return None


def _restart_haproxy(env: Env) -> None:
    """Stop the running HAProxy (by its pidfile) and start a new one from the same files."""
    LocalHAProxy(env.spec.workdir, bind=env.spec.bind).stop()
    LocalHAProxy(env.spec.workdir, bind=env.spec.bind, check_inter_ms=200, check_rise=1).start()
