"""The dashboard server on a free loopback port: pages, JSON, tokens, refusals, escaping."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdlib.cli.main import main as cli
from cdlib.dashboard import (
    Dashboard,
    DashboardError,
    Sources,
    Token,
    check_bind,
    load_tokens,
)
from cdlib.dashboard.model import _progress, rollout
from cdlib.flags import LocalFileStore
from cdlib.release import gates
from cdlib.release.history import History, ReleaseRecord, StepRecord
from cdlib.secret import Secret
from cdlib.state import LocalStore

TOKEN = "s3cret-token-0123456789"


def _records(state: Path) -> ReleaseRecord:
    hist = History("web", state_dir=str(state))
    old = ReleaseRecord(
        "web",
        "1.0.0",
        "bluegreen",
        id="20261201T000000-aaaaaa",
        started=1.0,
        finished=9.0,
        outcome="succeeded",
        previous_group="blue",
        new_group="green",
        reason="fine <script>alert(1)</script>",
    )
    hist.save(old)
    run = ReleaseRecord(
        "web",
        "2.0.0",
        "canary",
        id="20261202T000000-bbbbbb",
        started=time.time() - 30,
        previous_group="green",
        new_group="blue",
        weights={"green": 90, "blue": 10},
        plan=["traffic 10%", "traffic 50%", "traffic 100%"],
    )
    run.steps = [
        StepRecord("read router", run.started, 0.1, "succeeded"),
        StepRecord("traffic 10% -> blue", run.started + 1, 0.2, "succeeded", "weights {...}"),
        StepRecord("gate 'qa' at 10%", run.started + 2),
    ]
    run.samples = [
        {
            "time": run.started + 3,
            "step": "analysis at 10%",
            "metric": "error_rate",
            "value": 0.01,
            "threshold": 0.05,
            "verdict": "pass",
            "requests": 40,
            "weights": {"green": 90, "blue": 10},
        },
    ]
    hist.save(run)
    # A record as an older cdlib wrote it: no samples, plan, approvals, metadata ...
    raw = {
        "app": "web",
        "version": "0.9",
        "strategy": "bluegreen",
        "id": "20261101T000000-old",
        "started": 0.5,
        "finished": 0.7,
        "outcome": "succeeded",
        "steps": [],
    }
    (state / "web" / "history" / "20261101T000000-old.json").write_text(json.dumps(raw))
    return run


@pytest.fixture
def state(tmp_path: Path) -> Path:
    _records(tmp_path / "state")
    return tmp_path / "state"


def _dash(state: Path, tmp_path: Path, **kw: Any) -> Iterator[Dashboard]:
    flags = tmp_path / "flags.json"
    flags.write_text(
        json.dumps(
            {
                "flags": {
                    "new-ui": {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "off",
                        "targeting": {"fractional": [["on", 25], ["off", 75]]},
                    }
                }
            }
        )
    )
    lines: list[str] = []
    d = Dashboard(
        Sources(LocalStore(str(state)), [LocalFileStore(flags)], read_router=False),
        port=0,
        interval=0.2,
        log=lines.append,
        **kw,
    ).start()
    d.lines = lines  # type: ignore[attr-defined]
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def ro(state: Path, tmp_path: Path) -> Iterator[Dashboard]:
    yield from _dash(state, tmp_path)


@pytest.fixture
def rw(state: Path, tmp_path: Path) -> Iterator[Dashboard]:
    yield from _dash(state, tmp_path, tokens=(Token(Secret(TOKEN), "ops"),))


def _req(
    d: Dashboard, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def test_page_shows_apps_progress_flags_with_csp_and_escaping(ro: Dashboard) -> None:
    status, headers, body = _req(ro, "GET", "/")
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert 'id="step-web">step 1 of 3</span>' in body
    assert "waiting for approval at gate &#x27;qa&#x27; at 10%" in body
    assert 'data-group="blue" data-weight="10"' in body
    assert 'data-flag="new-ui"' in body and 'data-group="on" data-weight="25"' in body
    assert 'id="readonly"' in body and "data-action" not in body  # no token: no buttons
    assert "20261101T000000-old" in body  # an old record is listed
    status, _, js = _req(ro, "GET", "/static/dashboard.js")
    assert status == 200 and "innerHTML" in js


def test_reports_escape_text_and_unknown_app_or_release_is_404(ro: Dashboard) -> None:
    status, headers, body = _req(ro, "GET", "/apps/web/releases/20261201T000000-aaaaaa")
    assert status == 200 and "fine &lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert" not in body
    assert headers["content-security-policy"].startswith("default-src 'none'")
    status, _, body = _req(ro, "GET", "/apps/web/releases/20261101T000000-old")
    assert status == 200 and "No analysis samples recorded" in body
    status, _, body = _req(ro, "GET", "/apps/web/releases/nope%3Cb%3E")
    assert status == 404 and "has no release &#x27;nope&lt;b&gt;&#x27;" in body, body
    status, _, body = _req(ro, "GET", "/apps/nope/releases/x")
    assert status == 404 and "no release of app" in body
    status, headers, body = _req(ro, "GET", "/api/apps/nope")
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith("no app 'nope'")
    assert _req(ro, "GET", "/etc/passwd")[0] == 404
    assert _req(ro, "GET", "/static/../model.py")[0] == 404


def test_state_json(ro: Dashboard) -> None:
    status, _, body = _req(ro, "GET", "/api/state")
    data = json.loads(body)
    assert status == 200 and data["can_act"] is False
    web = data["apps"][0]
    assert web["live"] == {"group": "green", "version": "1.0.0"}  # from history
    assert web["current"]["step"] == 1 and web["current"]["of"] == 3
    assert web["current"]["analysis"][0]["value"] == 0.01
    assert data["flags"][0]["flags"][0]["rollout"] == [
        {"variant": "on", "percent": 25.0},
        {"variant": "off", "percent": 75.0},
    ]
    assert "step 1 of 3" in data["html"]


def test_without_a_token_a_post_is_refused_logged_and_changes_nothing(
    ro: Dashboard, state: Path
) -> None:
    rid = "20261202T000000-bbbbbb"
    for path in ("/api/apps/web/promote", "/api/apps/web/abort"):
        status, _, body = _req(
            ro,
            "POST",
            path,
            b"token=whatever",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 403, body
    assert gates.received("web", rid, state_dir=str(state)) is None
    assert any("refused" in line and "/api/apps/web/promote" in line for line in ro.lines)  # type: ignore[attr-defined]
    _, _, body = _req(ro, "GET", "/")
    assert "refused" in body and "no access token configured" in body  # the log panel
    # A GET to an action changes nothing either.
    assert _req(ro, "GET", "/api/apps/web/promote")[0] == 404
    assert gates.received("web", rid, state_dir=str(state)) is None


def test_with_a_token_promote_is_sent_with_who_and_a_wrong_token_is_refused(
    rw: Dashboard, state: Path
) -> None:
    rid = "20261202T000000-bbbbbb"
    _, _, page = _req(rw, "GET", "/")
    assert 'data-action="promote"' in page and 'id="login"' in page
    hdr = {"Content-Type": "application/json", "X-Cdlib-Token": "wrong-token-0123456789"}
    status, _, _ = _req(rw, "POST", "/api/apps/web/promote", b"{}", hdr)
    assert status == 403
    assert gates.received("web", rid, state_dir=str(state)) is None
    assert any("missing or wrong token" in line for line in rw.lines)  # type: ignore[attr-defined]
    hdr = {
        "Content-Type": "application/json",
        "X-Cdlib-Token": TOKEN,
        "X-Cdlib-Name": "alice\x1b[2J",
    }
    # The release the page showed is not the one running: nothing is sent.
    status, _, _ = _req(rw, "POST", "/api/apps/web/promote", b'{"release": "other"}', hdr)
    assert status == 409
    status, _, body = _req(
        rw, "POST", "/api/apps/web/promote", json.dumps({"release": rid}).encode(), hdr
    )
    assert status == 200, body
    assert json.loads(body)["by"] == "dashboard:alice2J"
    assert gates.received("web", rid, state_dir=str(state)) == "promote"
    assert gates.sender("web", rid, state_dir=str(state)) == "dashboard:alice2J"
    # Without a name, the token's label says who.
    status, _, body = _req(rw, "POST", "/api/login", b"", {"X-Cdlib-Token": TOKEN})
    assert status == 200 and json.loads(body)["by"] == "dashboard:ops"
    # Unknown app: 404; another site's page cannot post (Origin) even with the token.
    assert _req(rw, "POST", "/api/apps/nope/promote", b"{}", hdr)[0] == 404
    evil = {**hdr, "Origin": "http://evil.example"}
    assert _req(rw, "POST", "/api/apps/web/abort", b"{}", evil)[0] == 403
    assert gates.received("web", rid, state_dir=str(state)) == "promote"
    assert not any(TOKEN in line for line in rw.lines)  # type: ignore[attr-defined]


def test_a_foreign_host_header_is_refused(ro: Dashboard) -> None:
    # A page of another site whose name resolves here (DNS rebinding) cannot read.
    assert _req(ro, "GET", "/api/state", headers={"Host": "evil.example"})[0] == 403


def test_progress_and_rollout_parsing() -> None:
    plan = ["traffic 10%", "traffic 50%", "traffic 100%"]
    assert _progress(plan, ["read router", "traffic 10% -> green"]) == (1, 3)
    assert _progress(plan, ["traffic 10% -> g", "traffic 50% -> g", "traffic 100% -> g"]) == (3, 3)
    assert _progress(["traffic 10%"], ["traffic 100% -> g"]) == (0, 1)
    assert _progress([], ["a", "b"]) == (2, None)
    assert rollout({"if": [True, {"fractional": [["a"], ["b", 3]]}]}) == [
        {"variant": "a", "percent": 25.0},
        {"variant": "b", "percent": 75.0},
    ]
    assert rollout({"if": [True, "a", "b"]}) is None


def test_tokens_and_bind_rules(tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text(f"# who holds which\nalice {TOKEN}\n\n{TOKEN}x\n")
    f.chmod(0o644)
    with pytest.raises(DashboardError, match="readable by others"):
        load_tokens(f, env={})
    f.chmod(0o600)
    toks = (
        load_tokens(f, env={"CDLIB_DASHBOARD_TOKEN": "short"}) if False else load_tokens(f, env={})
    )
    assert [t.label for t in toks] == ["alice", "token"]
    assert toks[0].matches(TOKEN) and not toks[0].matches(TOKEN + "x")
    assert TOKEN not in repr(toks)
    with pytest.raises(DashboardError, match="shorter than 16"):
        load_tokens(None, env={"CDLIB_DASHBOARD_TOKEN": "short"})
    assert check_bind("127.0.0.1", explicit=False, tokens=()) is None
    assert check_bind("::1", explicit=True, tokens=()) is None
    with pytest.raises(DashboardError, match="needs --bind"):
        check_bind("0.0.0.0", explicit=True, tokens=())
    with pytest.raises(DashboardError, match="needs --bind"):
        check_bind("10.1.2.3", explicit=False, tokens=toks)
    check_bind("10.1.2.3", explicit=True, tokens=toks)


def test_cli_json_unknown_app_exits_4_and_no_token_option(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["dashboard", "--state", str(state), "--json", "nope"]) == 4
    assert "no app 'nope'" in capsys.readouterr().err
    assert cli(["dashboard", "--state", str(state), "--json", "web"]) == 0
    assert json.loads(capsys.readouterr().out)["current"]["of"] == 3
    assert cli(["dashboard", "--state", str(state), "--flags", str(state / "none.json")]) == 4
    assert "--flags" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["dashboard", "--state", str(state), "--token", TOKEN])
    assert cli(["dashboard", "--state", str(state), "--bind", "0.0.0.0", "--port", "0"]) == 4
    assert "needs --bind" in capsys.readouterr().err


def test_the_server_stops_cleanly_on_sigterm(state: Path) -> None:
    env = {**os.environ, "CDLIB_DASHBOARD_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdlib", "dashboard", "--state", str(state), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving http://127.0.0.1:" in line and "1 token(s)" in line, line
        assert TOKEN not in line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/state")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serves_on_ipv6_loopback(state: Path) -> None:
    try:
        d = Dashboard(Sources(LocalStore(str(state)), read_router=False), host="::1", port=0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    d.start()
    try:
        assert d.url.startswith("http://[::1]:")
        conn = http.client.HTTPConnection("::1", d.port, timeout=10)
        conn.request("GET", "/api/apps/web")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        d.stop()
