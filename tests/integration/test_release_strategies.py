"""Release strategies against a real HAProxy and real sample-app processes, under load."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import cdlib
from cdlib.checks import HttpCheck, Retry
from cdlib.checks.suite import Suite
from cdlib.release import (
    BlueGreen,
    Canary,
    CanaryStep,
    History,
    LocalHAProxySpec,
    Rolling,
    Thresholds,
    rollback,
)
from cdlib.release.ops import status
from cdlib.traffic.local import LocalHAProxy
from tests.integration.traffic.traffic_helpers import Load, free_port

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "playbooks"))

from sampleapp_local import deploy as deploy_play  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")


@dataclass
class Env:
    inventory: Path
    state: str
    lb_port: int
    spec: LocalHAProxySpec
    dirs: list[Path]

    @property
    def lb(self) -> str:
        return f"127.0.0.1:{self.lb_port}"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    ports = {name: free_port() for name in ("blue1", "blue2", "green1", "green2")}
    inv = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_host": "127.0.0.1"},
            "children": {
                g: {
                    "hosts": {
                        f"{g}{i}": {
                            "app_port": ports[f"{g}{i}"],
                            "app_dir": str(tmp_path / f"{g}{i}"),
                        }
                        for i in (1, 2)
                    }
                }
                for g in ("blue", "green")
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    lb_port = free_port()
    workdir = tmp_path / "haproxy"
    local = LocalHAProxy(workdir, bind=f"127.0.0.1:{lb_port}", check_inter_ms=200, check_rise=1)
    local.start()
    spec = LocalHAProxySpec(
        workdir=str(workdir),
        bind=f"127.0.0.1:{lb_port}",
        check_inter_ms=200,
        check_rise=1,
        ensure_running=False,
    )
    try:
        yield Env(path, str(tmp_path / "state"), lb_port, spec, [tmp_path / n for n in ports])
    finally:
        local.stop()
        # A test may have restarted HAProxy from the same files: stop it by its pidfile.
        LocalHAProxy(workdir, bind=f"127.0.0.1:{lb_port}").stop()
        for d in [tmp_path / n for n in ports]:
            pid = d / "pid"
            if pid.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid.read_text()), signal.SIGKILL)


def _checks(env: Env) -> tuple[Suite, Suite]:
    retry = Retry(attempts=20, timeout=10.0, backoff=0.1, max_backoff=0.5)
    preview = Suite(
        "preview",
        (
            HttpCheck(
                url="http://{{ address }}:{{ app_port }}/version",
                body_contains="{{ release_version }}",
                retry=retry,
            ),
        ),
    )
    post = Suite(
        "post",
        (
            HttpCheck(
                url=f"http://{env.lb}/version", body_contains="{{ release_version }}", retry=retry
            ),
        ),
    )
    return preview, post


def _bluegreen(env: Env, version: str, fail: str = "") -> BlueGreen:
    preview, post = _checks(env)
    return BlueGreen(
        app="demo",
        version=version,
        router=env.spec,
        state_dir=env.state,
        deploy=lambda t: deploy_play(t, fail_mode=fail),
        preview_checks=preview,
        post_checks=post,
        health_timeout=15,
    )


def _release_failed(res: cdlib.RunResult) -> list[str]:
    return [r.msg for r in res.results if r.host == "release:demo" and r.status.value == "failed"]


def test_bluegreen_release_under_load_then_bad_build_then_rollback(env: Env) -> None:
    first = _bluegreen(env, "1.0.0").run(str(env.inventory))
    assert first.ok, _release_failed(first)
    assert env.spec.build().state().live == "blue"

    load = Load(env.lb_port, threads=2, max_requests=2000000, max_seconds=90).start()
    try:
        load.wait_for(100)
        second = _bluegreen(env, "1.1.0").run(str(env.inventory))
        assert second.ok, _release_failed(second)
        n = load.total
        load.wait_for(n + 100)
        # One-step rollback to 1.0.0 (still on blue, untouched since)
        t0 = time.monotonic()
        rec = rollback("demo", state_dir=env.state)
        took = time.monotonic() - t0
        n = load.total
        load.wait_for(n + 100)
        assert env.spec.build().state().live == "blue"
        # A build whose health check fails never gets traffic (it goes to idle green).
        bad = _bluegreen(env, "1.2.0", fail="health").run(str(env.inventory))
        assert not bad.ok and bad.exit_code == 2
        assert any("unhealthy" in m or "preview" in m for m in _release_failed(bad))
        n = load.total
        load.wait_for(n + 100)
    finally:
        result = load.stop()
    assert result.failures == []
    assert result.total >= 500
    assert set(result.ok) == {"1.0.0", "1.1.0"}  # 1.2.0 never answered a user
    assert rec.new_group == "blue" and env.spec.build().state().live == "blue"
    assert rec.steps[0].detail.startswith("live: blue")
    assert took < 5  # the whole command; the switch itself is recorded below
    switch_s = float(rec.steps[0].detail.split("switch took ")[1].rstrip("s)"))
    assert switch_s < 1.0
    hist = History("demo", state_dir=env.state).all()
    assert [r.outcome for r in hist] == ["succeeded", "rolled_back", "succeeded", "failed"]
    assert hist[2].strategy == "rollback"
    # Releasing what is live again is a no-op.
    again = _bluegreen(env, "1.0.0").run(str(env.inventory))
    assert again.ok and any(r.task == "already live" for r in again.results), [
        (r.task, r.msg) for r in again.results if r.host == "release:demo"
    ]


def test_releasing_the_live_version_again_converges_a_group_whose_apps_died(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    live = env.spec.build().state().live
    assert live is not None
    # A reboot of the live group's hosts: their apps are gone, the router still points
    # at them and its health checks take them out.
    for d in env.dirs:
        if d.name.startswith(live):
            os.kill(int((d / "pid").read_text()), signal.SIGKILL)
    router = env.spec.build()
    deadline = time.monotonic() + 10
    while router.health(live).healthy and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not router.health(live).healthy
    again = _bluegreen(env, "1.0.0").run(str(env.inventory))
    assert again.ok, _release_failed(again)
    tasks = [(r.task, r.status.name) for r in again.results if r.host == "release:demo"]
    assert ("already live", "OK") in tasks
    assert any(t.startswith("deploy 1.0.0 to " + live) and s == "CHANGED" for t, s in tasks)
    assert router.state().live == live  # no traffic moved
    assert router.health(live).healthy
    with urllib.request.urlopen(f"http://{env.lb}/version", timeout=5) as resp:
        assert resp.status == 200 and "1.0.0" in resp.read().decode()


def test_canary_of_failing_build_rolls_back_at_first_analysis(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=lambda t: deploy_play(t, fail_mode="errors"),
        steps=[CanaryStep(1, pause=4.0), CanaryStep(25, pause=4.0), 100],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=3),
        health_timeout=15,
    )
    load = Load(env.lb_port, threads=2, max_requests=2000000, max_seconds=90).start()
    try:
        load.wait_for(300)
        res = canary.run(str(env.inventory))
        n = load.total
        load.wait_for(n + 200)
    finally:
        result = load.stop()
    assert not res.ok
    steps = [r.task for r in res.results if r.host == "release:demo"]
    assert "analysis at 1%" in steps and "traffic 25% -> green" not in steps
    assert steps[-1] == "roll back: weight of green -> 0"
    assert env.spec.build().state().live == "blue"
    failed = len(result.failures)
    assert failed > 0  # the canary really got traffic and failed it
    assert failed / result.total < 0.01, (failed, result.total)
    rec = History("demo", state_dir=env.state).latest()
    assert rec is not None and rec.outcome == "rolled_back" and "5xx rate" in rec.reason


def test_canary_success_and_no_data_is_inconclusive(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    # No load at all: the analysis has no data -> inconclusive -> fail (configured).
    nodata = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        steps=[CanaryStep(10, pause=0.5), 100],
        thresholds=Thresholds(min_requests=10),
        on_inconclusive="fail",
        health_timeout=15,
    )
    res = nodata.run(str(env.inventory))
    assert not res.ok
    assert any("inconclusive" in r.msg for r in res.results if r.host == "release:demo")
    assert env.spec.build().state().live == "blue"
    good = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        steps=[CanaryStep(20, pause=2.0), CanaryStep(50, pause=2.0), 100],
        thresholds=Thresholds(min_requests=5),
        health_timeout=15,
    )
    load = Load(env.lb_port, threads=2, max_requests=200000, max_seconds=60).start()
    try:
        load.wait_for(50)
        res = good.run(str(env.inventory))
    finally:
        result = load.stop()
    assert res.ok, _release_failed(res)
    assert result.failures == []
    st = status("demo", state_dir=env.state)
    assert st.live == "green" and st.releases["green"] == "2.0.0"


def test_gate_waits_for_promote_from_the_cli(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    from cdlib.release import Gate

    gated = Canary(
        app="demo",
        version="3.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        health_timeout=15,
        steps=[CanaryStep(10, gate=Gate("qa sign-off", timeout=30, poll=0.1), analyse=False), 100],
    )
    import threading

    out: list[cdlib.RunResult] = []
    t = threading.Thread(target=lambda: out.append(gated.run(str(env.inventory))))
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rec = History("demo", state_dir=env.state).latest()
        if rec and rec.unfinished and any(s.name.startswith("gate") for s in rec.steps):
            break
        time.sleep(0.1)
    proc = subprocess.run(
        [sys.executable, "-m", "cdlib", "promote", "demo", "--state-dir", env.state],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    t.join(60)
    assert out and out[0].ok
    assert env.spec.build().state().live == "green"


def test_rolling_update_keeps_serving(env: Env) -> None:
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    preview, _ = _checks(env)
    rolling = Rolling(
        app="demo",
        version="1.5.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        group="blue",
        batch=1,
        checks=preview,
        health_timeout=15,
    )
    load = Load(env.lb_port, threads=2, max_requests=200000, max_seconds=60).start()
    try:
        load.wait_for(50)
        res = rolling.run(str(env.inventory))
        n = load.total
        load.wait_for(n + 50)
    finally:
        result = load.stop()
    assert res.ok, _release_failed(res)
    assert result.failures == []
    assert set(result.ok) == {"1.0.0", "1.5.0"}


def _haproxy_pids(workdir: Path) -> list[int]:
    # Every haproxy process running from this test's config (master or worker).
    out = subprocess.run(["pgrep", "-f", f"haproxy.*{workdir}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_status_and_check_mode_never_start_a_stopped_haproxy(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read-only commands and check mode leave a stopped HAProxy stopped; a real run starts it."""
    import dataclasses

    from cdlib.cli.main import main

    spec = dataclasses.replace(env.spec, ensure_running=True)
    first = dataclasses.replace(_bluegreen(env, "1.0.0"), router=spec).run(str(env.inventory))
    assert first.ok, _release_failed(first)
    local = LocalHAProxy(spec.workdir, bind=spec.bind)
    local.stop()
    assert not local.running() and _haproxy_pids(Path(spec.workdir)) == []

    # cdlib status reads the recorded spec (ensure_running=True) and reports, nothing more.
    assert main(["status", "demo", "--state-dir", env.state]) == 0
    out = capsys.readouterr().out
    assert f"not running; a release or rollback would start HAProxy in {spec.workdir}" in out
    assert main(["status", "demo", "--state-dir", env.state, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["router_error"]
    assert not local.running() and _haproxy_pids(Path(spec.workdir)) == []

    # cdlib run --check of a release whose spec asks to keep HAProxy running.
    pb = tmp_path / "release.py"
    pb.write_text(
        "from cdlib.release import BlueGreen, LocalHAProxySpec\n"
        f"BlueGreen(app='demo', version='2.0.0', state_dir={env.state!r}, deploy=lambda t: [],\n"
        f"          router=LocalHAProxySpec(workdir={spec.workdir!r}, bind={spec.bind!r}))\n"
    )
    assert main(["run", str(pb), "-i", str(env.inventory), "--check", "--format", "json"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    results = [(e["task"], e["status"]) for e in events if e["event"] == "task_result"]
    assert (f"start HAProxy in {spec.workdir}", "changed") in results
    assert ("release", "skipped") in results
    assert not local.running() and _haproxy_pids(Path(spec.workdir)) == []
    assert [r.outcome for r in History("demo", state_dir=env.state).all()] == ["succeeded"]

    # The real run (the apply path) starts it, then releases.
    again = dataclasses.replace(_bluegreen(env, "1.1.0"), router=spec).run(str(env.inventory))
    assert again.ok, _release_failed(again)
    assert local.running() and spec.build().state().live == "green"


def _rolled_back_canary(
    env: Env, *, pause: float, interval: float
) -> tuple[cdlib.RunResult, float]:
    """A canary of a build answering 500s, under load; the run and its wall time."""
    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=lambda t: deploy_play(t, fail_mode="errors"),
        steps=[CanaryStep(10, pause=pause), 100],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=20),
        sample_interval=interval,
        health_timeout=15,
    )
    load = Load(env.lb_port, threads=2, max_requests=2000000, max_seconds=120).start()
    try:
        load.wait_for(300)
        t0 = time.monotonic()
        res = canary.run(str(env.inventory))
        took = time.monotonic() - t0
    finally:
        load.stop()
    return res, took


def test_canary_analysis_samples_and_fails_fast_within_one_interval(env: Env) -> None:
    res, took = _rolled_back_canary(env, pause=60.0, interval=1.0)
    assert not res.ok
    assert took < 45, took  # nowhere near the 60 s pause
    rec = History("demo", state_dir=env.state).latest()
    assert rec is not None and rec.outcome == "rolled_back" and "5xx rate" in rec.reason
    analysis = next(s for s in rec.steps if s.name == "analysis at 10%")
    assert analysis.duration is not None and analysis.duration < 10, analysis.duration
    rates = [s for s in rec.samples if s["metric"] == "error_rate"]
    assert rates and {"time", "value", "threshold", "verdict", "weights"} <= set(rates[0])
    # The first sample with the minimum sample crossed the threshold and failed...
    crossed = next(s for s in rates if s["requests"] >= 20)
    assert crossed["verdict"] == "fail" and crossed["value"] > crossed["threshold"] == 0.05
    assert crossed["weights"] == {"blue": 90, "green": 10}
    assert all(s["verdict"] == "inconclusive" for s in rates if s["requests"] < 20)
    # ... and the rollback followed within the interval, not at the pause's end.
    back = next(s for s in rec.steps if s.name.startswith("roll back"))
    assert back.started - crossed["time"] < 3.0, back.started - crossed["time"]
    assert env.spec.build().state().live == "blue"


def _chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver; installed from Debian's packages when missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e .[test])")
    names = ("chromium", "chromedriver")
    if not all(shutil.which(n) for n in names) and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            timeout=900,
            check=False,
        )
    found = [shutil.which(n) for n in names]
    if not all(found):
        pytest.skip("chromium and chromedriver are absent and could not be installed with apt-get")
    return str(found[0]), str(found[1])


def test_report_of_rolled_back_canary_in_a_real_browser(env: Env, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from cdlib.cli.main import main as cli

    chromium, driver_path = _chromium()
    res, _ = _rolled_back_canary(env, pause=30.0, interval=1.0)
    assert not res.ok
    # A user-supplied text with markup: the report must show it as text.
    path = History("demo", state_dir=env.state).dir
    latest = History("demo", state_dir=env.state).latest()
    assert latest is not None
    data = json.loads((path / f"{latest.id}.json").read_text())
    data["reason"] += " <script>document.title='owned'</script>"
    (path / f"{latest.id}.json").write_text(json.dumps(data))
    report = tmp_path / "report.html"
    assert cli(["report", "demo", latest.id, "-o", str(report), "--state-dir", env.state]) == 0

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome'}",
        "--window-size=1100,2200",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        driver.get(report.as_uri())
        assert driver.title.startswith("demo 2.0.0: rolled_back")  # the script did not run
        assert driver.find_element(By.ID, "outcome").text == "rolled_back"
        reason = driver.find_element(By.ID, "reason").text
        assert "5xx rate" in reason and "<script>document.title='owned'</script>" in reason
        steps = [
            e.text for e in driver.find_elements(By.CSS_SELECTOR, "#steps tr.step td:first-child")
        ]
        assert any(s.startswith("roll back: weight of green -> 0") for s in steps), steps
        chart = driver.find_element(By.CSS_SELECTOR, "figure[data-metric='error_rate'] svg")
        assert chart.find_elements(By.CSS_SELECTOR, "line.threshold")
        assert chart.find_elements(By.CSS_SELECTOR, "circle.point.fail")
        assert chart.size["width"] > 300  # really laid out and drawn
        crossed = driver.find_element(By.CSS_SELECTOR, "p.crossed").text
        assert crossed.startswith("error_rate crossed its threshold 5.00%")
        weights = driver.find_element(By.ID, "weights")
        assert weights.find_elements(By.CSS_SELECTOR, "polyline[data-series='green']")
        # Opened from a file with nothing else to load.
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        shot = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    (tmp_path / "report.png").write_bytes(shot)
    if os.environ.get("CDLIB_SCREENSHOT_DIR"):
        out = Path(os.environ["CDLIB_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "release-report-rolled-back-canary.png").write_bytes(shot)
