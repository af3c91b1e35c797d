"""Issue 8's acceptance tests on the SSH fleet: flag tasks, a bad file stopped before any
host, and the sample app reading a flag through OpenFeature on a fleet host."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cdlib
from cdlib import Play, PlaybookError, PlaybookErrors, Status
from cdlib.connections.factory import connection_for
from cdlib.flags import AuditLog, FlagValidationError, HostFileStore, load_document
from cdlib.tasks.flags import flag_file, flag_kill, flag_ramp, flag_set
from tests.fleet import Fleet
from tests.sample_app import APP, free_port, http_get, run_app

pytestmark = pytest.mark.fleet

FLAGS_PATH = "/srv/app/flags.json"
FLAGS = {
    "flags": {
        "new-greeting": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "metadata": {"owner": "team-web", "expires": "2027-01-31"},
        }
    }
}


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``check`` (bounded in count and time); True once it holds."""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


def deploy(inventory: Path, src: Path) -> cdlib.RunResult:
    play = Play("flags", hosts="web")
    play.task(flag_file(FLAGS_PATH, src=str(src), mode="0644"))
    return cdlib.run(play, inventory)


def change(inventory: Path, task: cdlib.api.Task, *, check: bool = False) -> cdlib.RunResult:
    play = Play("flag change", hosts="web")
    play.task(task)
    return cdlib.run(play, inventory, check=check)


@pytest.fixture
def deployed(fleet: Fleet, fleet_inventory: Path, tmp_path: Path) -> Path:
    for h in fleet.hosts:
        fleet.path(h.index, "/srv/app").mkdir(parents=True, exist_ok=True)
    src = tmp_path / "flags.json"
    src.write_text(json.dumps(FLAGS, indent=2))
    result = deploy(fleet_inventory, src)
    assert result.ok and len(result.changed()) == len(fleet.hosts)
    return fleet_inventory


def test_bad_flag_file_is_rejected_before_any_host(
    fleet: Fleet, deployed: Path, tmp_path: Path
) -> None:
    before = {h.index: fleet.path(h.index, FLAGS_PATH).read_bytes() for h in fleet.hosts}
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "flags:\n  new-greeting:\n    state: ENABLED\n    variants: {on: true}\n"
        "    defaultVariant: 'off'\n"
    )
    with pytest.raises((PlaybookError, PlaybookErrors)) as info:
        deploy(deployed, bad)
    message = str(info.value)
    assert f"{bad}:4" in message and "flag 'new-greeting'" in message
    assert "nothing was deployed" in message
    for h in fleet.hosts:
        assert fleet.path(h.index, FLAGS_PATH).read_bytes() == before[h.index]


def test_flag_tasks_change_hosts_atomically_with_audit(
    fleet: Fleet, deployed: Path, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    checked = change(
        deployed, flag_ramp(path=FLAGS_PATH, flag="new-greeting", percent=10), check=True
    )
    assert checked.ok and len(checked.changed()) == len(fleet.hosts)
    assert load_document(fleet.path(1, FLAGS_PATH)).flag("new-greeting").get("targeting") is None

    for pct in (10, 50, 100):
        task = flag_ramp(path=FLAGS_PATH, flag="new-greeting", percent=pct, audit_log=str(log))
        result = change(deployed, task)
        assert result.ok and len(result.changed()) == len(fleet.hosts)
    again = change(deployed, flag_ramp(path=FLAGS_PATH, flag="new-greeting", percent=100))
    assert again.ok and again.changed() == set()
    for h in fleet.hosts:
        doc = load_document(fleet.path(h.index, FLAGS_PATH))
        assert doc.flag("new-greeting")["targeting"] == {"fractional": [["on", 100], ["off", 0]]}
        assert oct(fleet.path(h.index, FLAGS_PATH).stat().st_mode & 0o777) == "0o644"
        assert sorted(os.listdir(fleet.path(h.index, "/srv/app"))) == ["flags.json"]
    entries = list(AuditLog(log).entries())
    assert len(entries) == 3 * len(fleet.hosts)
    assert {e.target for e in entries} == {f"{h.name}:{FLAGS_PATH}" for h in fleet.hosts}
    assert entries[0].old is None and entries[-1].new["fractional"][0] == ["on", 100]

    bad = change(deployed, flag_set(path=FLAGS_PATH, flag="new-greeting", default_variant="x"))
    assert not bad.ok
    assert all(r.status is Status.FAILED and "no variant 'x'" in r.msg for r in bad.results)

    killed = change(deployed, flag_kill(path=FLAGS_PATH, flag="new-greeting", audit_log=str(log)))
    assert killed.ok
    doc = load_document(fleet.path(2, FLAGS_PATH))
    assert doc.flag("new-greeting")["defaultVariant"] == "off"
    assert "targeting" not in doc.flag("new-greeting")


def test_host_file_store_over_ssh(fleet: Fleet, deployed: Path) -> None:
    inv = cdlib.load_inventory([str(deployed)])
    host = inv.hosts[fleet.host(3).name]
    conn = connection_for(host)
    try:
        store = HostFileStore(conn, FLAGS_PATH)
        assert store.name == f"{host.name}:{FLAGS_PATH}"
        cdlib.flags.set_flag(store, "new-greeting", state="DISABLED")
        assert load_document(fleet.path(3, FLAGS_PATH)).flag("new-greeting")["state"] == (
            "DISABLED"
        )
        cdlib.flags.set_flag(store, "new-greeting", state="ENABLED")
        before = fleet.path(3, FLAGS_PATH).read_bytes()
        with pytest.raises(FlagValidationError, match="'state' is required"):
            store.write(store.read().with_data({"flags": {"x": {"variants": {"a": 1}}}}))
        assert fleet.path(3, FLAGS_PATH).read_bytes() == before
        assert load_document(fleet.path(3, FLAGS_PATH)).flag("new-greeting")["state"] == "ENABLED"
    finally:
        conn.close()


@contextlib.contextmanager
def app_on_host(fleet: Fleet, k: int) -> Iterator[str]:
    """Run the sample app inside host ``k`` (its /srv), reading the host's flag file."""
    env = {
        "APP_FLAGS_FILE": FLAGS_PATH,
        "APP_FLAGS_PROVIDER": "flagd",
        "APP_FLAGS_POLL_MS": "200",
    }
    probe = fleet.ssh(
        k, f"test -x {shlex.quote(sys.executable)} && test -r {shlex.quote(str(APP))}"
    )
    if probe.returncode != 0:
        # This interpreter is not visible inside the host (e.g. it lives under a private
        # /tmp): run the app beside the host on the very file the host has.
        with run_app({**env, "APP_FLAGS_FILE": str(fleet.path(k, FLAGS_PATH))}) as (_, url):
            yield url
        return
    addr, port = fleet.host(k).address, free_port(fleet.host(k).address)
    exports = " ".join(f"{key}={shlex.quote(v)}" for key, v in env.items())
    started = fleet.ssh(
        k,
        f"{exports} APP_BIND={addr} APP_PORT={port} setsid {shlex.quote(sys.executable)} "
        f"{shlex.quote(str(APP))} > /srv/app/app.log 2>&1 < /dev/null & echo $!",
        check=True,
    )
    pid = int(started.stdout.split()[-1])
    try:

        def listening() -> bool:
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex((addr, port)) == 0

        assert wait_until(listening), fleet.path(k, "/srv/app/app.log").read_text()
        yield f"http://{addr}:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def test_sample_app_on_a_host_follows_flag_tasks(fleet: Fleet, deployed: Path) -> None:
    with app_on_host(fleet, 1) as url:

        def greeting(user: str = "") -> dict[str, object]:
            body = json.loads(http_get(url + "/" + (f"?user={user}" if user else "")).body)
            return body

        first = greeting()
        assert first["greeting"] == "Hello"
        assert first["greeting_flag"] == {
            "value": False,
            "variant": "off",
            "reason": "STATIC",
            "errorCode": None,
        }
        result = change(
            deployed, flag_set(path=FLAGS_PATH, flag="new-greeting", default_variant="on")
        )
        assert result.ok
        assert wait_until(lambda: greeting()["greeting"] == "Hello from the new greeting!")
        change(deployed, flag_ramp(path=FLAGS_PATH, flag="new-greeting", percent=50))
        assert wait_until(lambda: greeting("ann")["greeting_flag"]["reason"] == "TARGETING_MATCH")
        change(deployed, flag_kill(path=FLAGS_PATH, flag="new-greeting"))
        assert wait_until(lambda: greeting("ann")["greeting"] == "Hello")
        assert greeting("ann")["greeting_flag"]["reason"] == "STATIC"


def test_kill_reaches_every_host_but_the_stopped_one(fleet: Fleet, deployed: Path) -> None:
    inv = cdlib.load_inventory([str(deployed)])
    for h in fleet.hosts:
        cdlib.flags.ramp(
            HostFileStore(connection_for(inv.hosts[h.name]), FLAGS_PATH), "new-greeting", 50
        )
    down = fleet.host(2)
    fleet.stop_host(down.index)
    conns = [connection_for(inv.hosts[h.name]) for h in fleet.hosts]
    try:
        stores = [HostFileStore(c, FLAGS_PATH) for c in conns]
        with pytest.raises(cdlib.flags.PartialChangeError) as info:
            cdlib.flags.kill(stores, "new-greeting")
        assert list(info.value.result.failed) == [f"{down.name}:{FLAGS_PATH}"]
        assert "unreachable" in info.value.result.failed[f"{down.name}:{FLAGS_PATH}"]
        assert f"reached {len(fleet.hosts) - 1} of {len(fleet.hosts)}" in str(info.value)
    finally:
        for c in conns:
            c.close()
        fleet.start_host(down.index)
    for h in fleet.hosts:
        flag = load_document(fleet.path(h.index, FLAGS_PATH)).flag("new-greeting")
        killed = flag["defaultVariant"] == "off" and "targeting" not in flag
        assert killed is (h.index != down.index), h.name


def test_flag_kill_task_with_a_host_down(fleet: Fleet, deployed: Path) -> None:
    down = fleet.host(4)
    change(deployed, flag_ramp(path=FLAGS_PATH, flag="new-greeting", percent=50))
    fleet.stop_host(down.index)
    try:
        result = change(deployed, flag_kill(path=FLAGS_PATH, flag="new-greeting"))
    finally:
        fleet.start_host(down.index)
    assert result.unreachable_hosts == [down.name]
    assert result.exit_code == cdlib.EXIT_UNREACHABLE
    assert len(result.changed()) == len(fleet.hosts) - 1
    for h in fleet.hosts:
        flag = load_document(fleet.path(h.index, FLAGS_PATH)).flag("new-greeting")
        assert ("targeting" not in flag) is (h.index != down.index), h.name


def _record_writes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Every flag document written to FLAGS_PATH on any host, in order."""
    from cdlib.connections.ssh import SSHConnection

    seen: list[dict[str, object]] = []
    real = SSHConnection._run

    def spy(self: SSHConnection, command: str, **kw: object) -> cdlib.CommandResult:
        data = kw.get("stdin")
        if isinstance(data, bytes) and FLAGS_PATH in command and data.startswith(b"{"):
            seen.append(json.loads(data))
        return real(self, command, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(SSHConnection, "_run", spy)
    return seen


def _rollout(doc: dict[str, object]) -> object:
    flag = doc["flags"]["new-greeting"]  # type: ignore[index]
    return flag.get("targeting")


def test_documented_flag_file_then_ramp_is_idempotent_and_never_resets(
    fleet: Fleet, deployed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/flags.md "In playbooks": flag_file(keep_live=True), then flag_ramp.
    src = tmp_path / "flags.json"  # the fixture's file: the flag without a rollout
    log = tmp_path / "audit.jsonl"

    def play(percent: int) -> cdlib.RunResult:
        p = Play("shop flags", hosts="web")
        p.task(flag_file(FLAGS_PATH, src=str(src), mode="0644", keep_live=True))
        p.task(flag_ramp(path=FLAGS_PATH, flag="new-greeting", percent=percent, audit_log=str(log)))
        return cdlib.run(p, deployed)

    assert play(10).ok
    ten = {"fractional": [["on", 10], ["off", 90]]}
    assert load_document(fleet.path(1, FLAGS_PATH)).flag("new-greeting")["targeting"] == ten
    writes = _record_writes(monkeypatch)
    again = play(10)
    assert again.ok and again.changed() == set() and writes == []
    ramped = play(50)
    assert ramped.ok
    fifty = {"fractional": [["on", 50], ["off", 50]]}
    # One write per host, straight from 10 % to 50 %: never the file's own (no) rollout.
    assert [_rollout(w) for w in writes] == [fifty] * len(fleet.hosts)
    # A new definition in the file (metadata) goes out with the live rollout kept.
    data = json.loads(src.read_text())
    data["flags"]["new-greeting"]["metadata"]["owner"] = "team-shop"
    src.write_text(json.dumps(data, indent=2))
    writes.clear()
    assert play(50).ok
    assert len(writes) == len(fleet.hosts) and all(_rollout(w) == fifty for w in writes)
    doc = load_document(fleet.path(1, FLAGS_PATH)).flag("new-greeting")
    assert doc["metadata"]["owner"] == "team-shop" and doc["targeting"] == fifty
