"""The S3 state store with real parts: moto in server mode on loopback, separate ``cdlib``
processes with their own working directories and no shared local state (two CI runners
sharing only the bucket), and a real HAProxy that both reach."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.integration.test_release_strategies import REPO, Env, env
from tests.moto_server import moto_endpoint

__all__ = ["env"]  # the fixture, re-used

SECRET = "s3cr3t-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto server (server mode, over HTTP) on a free loopback port."""
    with moto_endpoint() as url:
        yield url


@dataclass
class Bucket:
    url: str
    name: str
    client: object
    base_env: dict[str, str]

    def objects(self) -> dict[str, bytes]:
        c = self.client
        keys = [
            o["Key"]
            for page in c.get_paginator("list_objects_v2").paginate(Bucket=self.name)  # type: ignore[attr-defined]
            for o in page.get("Contents", [])
        ]
        return {k: c.get_object(Bucket=self.name, Key=k)["Body"].read() for k in keys}  # type: ignore[attr-defined]


@pytest.fixture
def bucket(endpoint: str) -> Bucket:
    name = "cdlib-" + uuid.uuid4().hex[:12]
    aws = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    client = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=name)
    return Bucket(f"s3://{name}/ci", name, client, aws)


class Runner:
    """One CI runner: its own working directory, HOME and local state directory."""

    def __init__(self, root: Path, name: str, bucket: Bucket, lease: float = 60.0) -> None:
        self.dir = root / name
        self.dir.mkdir()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CDLIB_STATE", "AWS_")) and k != "XDG_STATE_HOME"
        }
        self.env.update(bucket.base_env)
        self.env.update(
            HOME=str(self.dir / "home"),
            CDLIB_STATE_DIR=str(self.dir / "local-state"),  # must stay unused
            CDLIB_STATE_LEASE=str(lease),
            PYTHONPATH=str(REPO),
        )
        self.url = bucket.url

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=self.dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cdlib(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cdlib", *args, "--state", self.url],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _playbook(runner: Runner, env: Env, body: str) -> Path:
    path = runner.dir / "release.py"
    path.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'playbooks')!r})\n"
        "from sampleapp_local import deploy\n"
        "from cdlib import Secret\n"
        "from cdlib.release import BlueGreen, Canary, CanaryStep, LocalHAProxySpec\n"
        f"spec = LocalHAProxySpec(workdir={env.spec.workdir!r}, bind={env.spec.bind!r},\n"
        "    check_inter_ms=200, check_rise=1, ensure_running=False)\n" + body
    )
    return path


def _wait(pred: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_release_seen_and_rolled_back_from_another_runner(
    env: Env, bucket: Bucket, tmp_path: Path
) -> None:
    a = Runner(tmp_path, "runner-a", bucket)
    b = Runner(tmp_path, "runner-b", bucket)
    first = _playbook(
        a,
        env,
        "BlueGreen(app='demo', version='1.0.0', router=spec, deploy=deploy,"
        " health_timeout=15, vars={'db_password': Secret(" + repr(SECRET) + ")})\n",
    )
    done = a.cdlib("run", str(first), "-i", str(env.inventory), "--meta", "commit=abc123")
    assert done.returncode == 0, done.stdout + done.stderr
    canary = _playbook(
        a,
        env,
        "Canary(app='demo', version='2.0.0', router=spec, deploy=deploy, health_timeout=15,"
        " vars={'db_password': Secret(" + repr(SECRET) + ")},"
        " steps=[CanaryStep(10, pause=60, analyse=False), 100])\n",
    )
    running = a.popen("-m", "cdlib", "run", str(canary), "-i", str(env.inventory), "--state", a.url)
    try:
        router = env.spec.build()
        _wait(lambda: router.state().weights.get("green") == 10, "the canary at 10%")

        # Runner B sees the running release: status, steps, history, the lock holder.
        st = b.cdlib("status", "demo", "--format", "json")
        assert st.returncode == 0, st.stderr
        data = json.loads(st.stdout)
        assert data["unfinished"] and data["latest"]["version"] == "2.0.0"
        assert any("10%" in s["name"] or "10" in s["name"] for s in data["latest"]["steps"])
        assert data["lock"]["owner"] and not data["lock"]["stale"]
        assert data["weights"] == {"blue": 90, "green": 10}
        hist = json.loads(b.cdlib("history", "demo", "--format", "json").stdout)
        assert [(r["version"], r["outcome"]) for r in hist] == [
            ("1.0.0", "succeeded"),
            ("2.0.0", "running"),
        ]
        assert hist[0]["metadata"] == {"commit": "abc123"}

        # A release of the same app from runner B is refused, naming the holder.
        other = b.cdlib("run", str(first), "-i", str(env.inventory))
        assert other.returncode != 0
        assert "release lock of 'demo' is held by" in other.stdout + other.stderr

        # cdlib rollback from runner B switches traffic back and interrupts runner A.
        back = b.cdlib("rollback", "demo")
        assert back.returncode == 0, back.stderr
        assert "interrupted running release" in back.stdout
        assert dict(router.state().weights) == {"blue": 100, "green": 0}
        running.wait(30)  # long before the 60 s pause would end
        assert running.returncode != 0
    finally:
        if running.poll() is None:
            running.kill()
        running.communicate()
    hist = json.loads(b.cdlib("history", "demo", "--format", "json").stdout)
    assert [(r["strategy"], r["outcome"]) for r in hist][1:] == [
        ("canary", "interrupted"),
        ("rollback", "succeeded"),
    ]
    # Nothing was written to either runner's local state directory.
    assert not (a.dir / "local-state").exists() and not (b.dir / "local-state").exists()
    # No object of the store holds the secret of the strategy's vars.
    objects = bucket.objects()
    assert any(k.startswith("ci/demo/history/") for k in objects)
    leaked = [k for k, v in objects.items() if SECRET.encode() in v]
    assert leaked == []


HOLD = """
import sys, time
from cdlib.release.lock import LockHeld, ReleaseLock
start = float(sys.argv[1])
lock = ReleaseLock("demo", sys.argv[2], state_dir=sys.argv[3])
time.sleep(max(0.0, start - time.time()))
try:
    lock.acquire()
except LockHeld as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
print("GOT", flush=True)
time.sleep(float(sys.argv[4]))
lock.release()
"""


def test_two_runners_racing_for_the_lock_never_both_get_it(bucket: Bucket, tmp_path: Path) -> None:
    """20 rounds of two processes taking the release lock at the same instant.

    moto checks ``If-None-Match`` and writes in two steps, so two creates in the same
    instant may both succeed there (real S3 refuses one with 412 or 409); cdlib reads the
    lock back before going on, so even then only one proceeds.
    """
    a = Runner(tmp_path, "runner-a", bucket)
    b = Runner(tmp_path, "runner-b", bucket)
    for i in range(20):
        start = f"{time.time() + 1.5:.3f}"
        procs = [
            r.popen("-c", HOLD, start, f"rel-{i}-{n}", bucket.url, "1.0")
            for n, r in (("a", a), ("b", b))
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        codes = [p.returncode for p in procs]
        assert sorted(codes) == [0, 2], (i, codes, outs)
        loser = outs[codes.index(2)][1]
        winner = f"rel-{i}-{'ab'[codes.index(0)]}"
        assert "release lock of 'demo' is held by" in loser and winner in loser, loser
        assert (
            bucket.client.list_objects_v2(Bucket=bucket.name, Prefix="ci/demo/").get(  # type: ignore[attr-defined]
                "KeyCount"
            )
            == 0
        )


def test_killed_holder_leaves_a_lease_that_goes_stale_and_is_broken(
    bucket: Bucket, tmp_path: Path
) -> None:
    a = Runner(tmp_path, "runner-a", bucket, lease=3.0)
    b = Runner(tmp_path, "runner-b", bucket, lease=3.0)
    holder = a.popen("-c", HOLD, "0", "rel-killed", bucket.url, "600")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "GOT"
        time.sleep(4.0)  # longer than the lease: only renewals keep it
        st = json.loads(b.cdlib("status", "demo", "--format", "json").stdout)
        assert st["lock"]["owner"] and not st["lock"]["stale"], st["lock"]
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
    refused = b.cdlib("unlock", "demo")
    assert refused.returncode != 0 and "may still be running" in refused.stderr
    time.sleep(3.5)  # the lease ends unrenewed
    st = json.loads(b.cdlib("status", "demo", "--format", "json").stdout)
    assert st["lock"]["stale"] and "pid" in st["lock"]["owner"]
    text = b.cdlib("status", "demo").stdout
    assert "STALE" in text
    taken = b.popen("-c", HOLD, "0", "rel-new", bucket.url, "0")
    out, err = taken.communicate(timeout=60)
    assert taken.returncode == 2 and "lease expired" in err and "STALE" in err
    broke = b.cdlib("unlock", "demo")
    assert broke.returncode == 0 and f"pid {holder.pid}" in broke.stdout, broke.stderr
    taken = b.popen("-c", HOLD, "0", "rel-new", bucket.url, "0")
    out, err = taken.communicate(timeout=60)
    assert taken.returncode == 0 and out.strip() == "GOT", err
