"""The dashboard on the S3 state store (moto in server mode on loopback)."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from cdlib.dashboard import Dashboard, Sources, Token
from cdlib.release import gates
from cdlib.release.history import History, ReleaseRecord, StepRecord
from cdlib.secret import Secret
from cdlib.state import open_store
from tests.integration.test_state_s3 import Bucket, bucket, endpoint

__all__ = ["bucket", "endpoint"]  # the fixtures, re-used

TOKEN = "s3-dashboard-token-0123456789"


def test_dashboard_reads_and_promotes_through_the_s3_store(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in bucket.base_env.items():
        monkeypatch.setenv(k, v)
    store = open_store(bucket.url)
    rec = ReleaseRecord("web", "2.0.0", "canary", plan=["traffic 10%", "traffic 100%"])
    rec.steps = [
        StepRecord("traffic 10% -> green", time.time(), 0.1, "succeeded"),
        StepRecord("gate 'qa' at 10%", time.time()),
    ]
    History("web", state_dir=store).save(rec)
    dash = Dashboard(
        Sources(store, read_router=False),
        port=0,
        tokens=(Token(Secret(TOKEN), "ci"),),
        log=lambda _: None,
    ).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", dash.port, timeout=30)
        conn.request("GET", "/api/apps/web")
        web = json.loads(conn.getresponse().read())
        assert web["current"]["step"] == 1 and web["current"]["of"] == 2
        assert web["current"]["waiting_at"] == "gate 'qa' at 10%"
        conn.request(
            "POST",
            "/api/apps/web/promote",
            body=json.dumps({"release": rec.id}),
            headers={"Content-Type": "application/json", "X-Cdlib-Token": TOKEN},
        )
        r = conn.getresponse()
        assert r.status == 200, r.read()
        r.read()
        conn.close()
    finally:
        dash.stop()
    # The signal is in the bucket, where a release on another machine waits for it.
    assert gates.received("web", rec.id, state_dir=bucket.url) == "promote"
    assert gates.sender("web", rec.id, state_dir=bucket.url) == "dashboard:ci"
    assert "web/control.json" in {k.removeprefix("ci/") for k in bucket.objects()}
