"""The dashboard in a real browser during a canary of the sample app behind HAProxy."""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdlib
from cdlib.dashboard import Dashboard, Sources, Token
from cdlib.release import Canary, CanaryStep, Gate, History, Thresholds
from cdlib.secret import Secret
from cdlib.state import LocalStore
from tests.integration.test_release_strategies import (  # the HAProxy + sample app setup
    Env,
    _bluegreen,
    _chromium,
    deploy_play,
    env,
)
from tests.integration.traffic.traffic_helpers import Load

__all__ = ["env"]  # the fixture, imported for the tests below

TOKEN = "browser-test-token-0123456789"


def _wait(what: str, cond: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _browser(tmp_path: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _chromium()
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
        "--window-size=1200,1800",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def _shot(driver: Any, tmp_path: Path, name: str) -> None:
    png = driver.get_screenshot_as_png()
    (tmp_path / name).write_bytes(png)
    if os.environ.get("CDLIB_SCREENSHOT_DIR"):
        out = Path(os.environ["CDLIB_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(png)


def _text(driver: Any, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def _click(driver: Any, css: str) -> None:
    """Click ``css``, finding it again when a refresh replaced it under the click."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{css} kept changing under the click")


def test_dashboard_follows_a_canary_and_promotes_its_gate(env: Env, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    canary = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        health_timeout=15,
        steps=[
            CanaryStep(10, pause=5.0),
            CanaryStep(50, gate=Gate("qa sign-off", timeout=120, poll=0.2), analyse=False),
            100,
        ],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=5),
        sample_interval=1.0,
    )
    dash = Dashboard(
        Sources(LocalStore(env.state)),
        port=0,
        interval=0.5,
        tokens=(Token(Secret(TOKEN), "ci"),),
        log=lambda line: None,
    ).start()
    load = Load(env.lb_port, threads=2, max_requests=2000000, max_seconds=180).start()
    out: list[cdlib.RunResult] = []
    release = threading.Thread(target=lambda: out.append(canary.run(str(env.inventory))))
    driver = _browser(tmp_path)
    try:
        load.wait_for(100)
        driver.get(dash.url)
        assert driver.title == "cdlib dashboard"
        release.start()
        # Step 1 of 3 at 10 %, with the analysis values arriving while it pauses.
        _wait("step 1 of 3", lambda: _text(driver, "#step-demo") == "step 1 of 3")
        _wait(
            "the canary's 10% weight",
            lambda: driver.find_elements(
                By.CSS_SELECTOR, "#weights-demo .legend[data-group='green'][data-weight='10']"
            ),
        )
        _wait(
            "an analysis value",
            lambda: _text(driver, "#analysis-demo tr[data-metric='error_rate'] td.value"),
        )
        _shot(driver, tmp_path, "dashboard-canary-analysis.png")
        # The page moves on by itself: step 2 of 3 at 50 %, waiting at the gate.
        _wait("step 2 of 3", lambda: _text(driver, "#step-demo") == "step 2 of 3", 90)
        _wait("the gate", lambda: "qa sign-off" in _text(driver, "#waiting-demo"))
        assert driver.find_elements(
            By.CSS_SELECTOR, "#weights-demo .legend[data-group='green'][data-weight='50']"
        )
        _shot(driver, tmp_path, "dashboard-canary-gate.png")
        # Sign in and press Promote: the gate passes and the release finishes.
        driver.find_element(By.ID, "login-name").send_keys("alice")
        driver.find_element(By.ID, "login-token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#login button").click()
        _wait("sign-in", lambda: _text(driver, "#whoami") == "acting as dashboard:alice")
        _click(driver, "button.promote[data-app='demo']")
        release.join(120)
        assert out and out[0].ok
        _wait("the release to end", lambda: "No release in progress" in _text(driver, "#app-demo"))
        rec = History("demo", state_dir=env.state).latest()
        assert rec is not None and rec.outcome == "succeeded"
        assert rec.approvals[0]["by"] == "dashboard:alice"
        assert "dashboard:alice" in _text(driver, "#history-demo")
        assert "dashboard:alice: promote demo" in _text(driver, "#log")
        _wait("the new live version", lambda: "2.0.0 on green" in _text(driver, "#app-demo"))
        _shot(driver, tmp_path, "dashboard-after-promote.png")
        # Nothing but the page's own files was loaded (no CDN).
        urls = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert all(u.startswith(dash.url) for u in urls), urls
    finally:
        driver.quit()
        load.stop()
        if release.is_alive():
            release.join(120)
        dash.stop()


def test_read_only_dashboard_has_no_button_and_a_forged_post_is_refused(
    env: Env, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    assert _bluegreen(env, "1.0.0").run(str(env.inventory)).ok
    gated = Canary(
        app="demo",
        version="2.0.0",
        router=env.spec,
        state_dir=env.state,
        deploy=deploy_play,
        health_timeout=15,
        steps=[CanaryStep(10, gate=Gate("qa sign-off", timeout=60, poll=0.2), analyse=False)],
    )
    dash = Dashboard(Sources(LocalStore(env.state)), port=0, interval=0.5, log=lambda _: None)
    dash.start()
    out: list[cdlib.RunResult] = []
    release = threading.Thread(target=lambda: out.append(gated.run(str(env.inventory))))
    driver = _browser(tmp_path)
    try:
        release.start()
        driver.get(dash.url)
        _wait("the gate", lambda: "qa sign-off" in _text(driver, "#waiting-demo"), 90)
        assert driver.find_elements(By.ID, "readonly")
        assert not driver.find_elements(By.CSS_SELECTOR, "button[data-action]")
        assert not driver.find_elements(By.ID, "login")
        # A forged request from the page itself (same origin, no token) and one from curl.
        status = driver.execute_script(
            "return fetch('/api/apps/demo/promote', {method: 'POST'}).then(r => r.status)"
        )
        assert status == 403
        conn = http.client.HTTPConnection("127.0.0.1", dash.port, timeout=10)
        conn.request(
            "POST",
            "/api/apps/demo/abort",
            body=b"token=guess",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert conn.getresponse().status == 403
        conn.close()
        _wait("the refusal in the log", lambda: "refused" in _text(driver, "#log"))
        assert "/api/apps/demo/promote" in _text(driver, "#log")
        _shot(driver, tmp_path, "dashboard-read-only-refused.png")
        rec = History("demo", state_dir=env.state).latest()
        assert rec is not None and rec.unfinished  # still waiting: nothing was sent
    finally:
        driver.quit()
        # End the release the way an operator would.
        from cdlib.release.ops import signal

        signal("demo", "abort", state_dir=env.state, by="test")
        release.join(120)
        dash.stop()
    assert out and not out[0].ok
    rec = History("demo", state_dir=env.state).latest()
    # An abort is recorded as such (traffic rolled back, as its reason says).
    assert rec is not None and rec.outcome == "aborted" and "from test" in rec.reason
