"""Issue 2's acceptance tests: the example playbook over real SSH on the fleet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cdlib
from cdlib import CallbackSink, Status
from tests.fleet import Fleet

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "playbooks" / "hello.py"

pytestmark = pytest.mark.fleet


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cdlib", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full_env,
        timeout=120,
    )


def test_check_predicts_first_run_and_second_run_changes_nothing(
    fleet: Fleet, fleet_inventory: Path
) -> None:
    checked = cdlib.run(HELLO, fleet_inventory, check=True)
    assert checked.ok, [r for r in checked.results if r.status is not Status.OK]
    # check mode touched nothing on any host
    for h in fleet.hosts:
        assert not fleet.path(h.index, "/srv/hello").exists()
    predicted = checked.changed()
    assert len(predicted) >= 5 * 7

    first = cdlib.run(HELLO, fleet_inventory)
    assert first.ok and first.exit_code == 0
    assert first.changed() == predicted
    for h in fleet.hosts:
        conf = fleet.path(h.index, "/srv/hello/shared/hello.conf").read_text()
        assert f"host = {h.name}" in conf
        link = fleet.ssh(h.index, "readlink /srv/hello/current", check=True).stdout.strip()
        assert link == "/srv/hello/releases/1.0.0"

    second = cdlib.run(HELLO, fleet_inventory)
    assert second.ok
    assert second.changed() == set()
    assert all(s.changed == 0 for s in second.stats.values())


def test_unreachable_host_is_reported_and_others_finish(
    fleet: Fleet, fleet_inventory: Path
) -> None:
    fleet.stop_host(3)
    proc = _cli("run", str(HELLO), "-i", str(fleet_inventory), "--format", "json")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    recap = events[-1]
    assert recap["event"] == "recap"
    assert proc.returncode == cdlib.EXIT_UNREACHABLE == 3
    assert recap["hosts"]["host3"]["unreachable"] == 1
    unreachable = [e for e in events if e.get("status") == "unreachable"]
    assert [e["host"] for e in unreachable] == ["host3"]
    assert "127.0." in unreachable[0]["msg"] or "connect" in unreachable[0]["msg"]
    for other in ("host1", "host2", "host4", "host5"):
        assert recap["hosts"][other]["failed"] == 0
        assert recap["hosts"][other]["unreachable"] == 0
        assert recap["hosts"][other]["changed"] > 0


def test_misspelt_option_fails_before_any_connection(
    fleet: Fleet, fleet_inventory: Path, tmp_path: Path
) -> None:
    pb = tmp_path / "typo.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('typo', hosts='all')\n"
        "play.task(tasks.directory('/srv/typo'))\n"
        "play.task(tasks.file('/srv/typo/x', contnet='hello'))\n"
    )
    proc = _cli("run", str(pb), "-i", str(fleet_inventory))
    assert proc.returncode == cdlib.EXIT_BAD_INPUT
    assert "typo.py:4" in proc.stderr
    assert "contnet" in proc.stderr and "did you mean 'content'" in proc.stderr
    for h in fleet.hosts:
        assert not fleet.path(h.index, "/srv/typo").exists()
    # The Python API fails the same way, and no connection is ever made.
    made: list[str] = []

    def factory(host: cdlib.Host) -> cdlib.api.Connection:
        made.append(host.name)
        raise AssertionError("connected")

    with pytest.raises(cdlib.PlaybookError) as err:
        cdlib.run(pb, fleet_inventory, connection_factory=factory)
    assert "typo.py:4" in str(err.value)
    assert made == []


def test_undefined_variable_is_reported_with_template_line_and_host(
    fleet: Fleet, fleet_inventory: Path, tmp_path: Path
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "c.j2").write_text("a = 1\nb = {{ nope }}\n")
    pb = tmp_path / "undef.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('undef', hosts='all')\n"
        "play.task(tasks.directory('/srv/undef'))\n"
        "play.task(tasks.template('c.j2', '/srv/undef/c'))\n"
    )
    proc = _cli("run", str(pb), "-i", str(fleet_inventory))
    assert proc.returncode == cdlib.EXIT_BAD_INPUT
    assert "c.j2:2" in proc.stderr
    assert "'nope'" in proc.stderr
    assert "undef.py:4" in proc.stderr and "host1" in proc.stderr
    assert "nothing was changed" in proc.stderr
    assert not fleet.path(1, "/srv/undef").exists()


def test_secret_never_appears_in_diff_or_events(fleet: Fleet, fleet_inventory: Path) -> None:
    token = "s3cr3t-token-9f8e7d"
    proc = _cli(
        "run",
        str(HELLO),
        "-i",
        str(fleet_inventory),
        "--diff",
        "--format",
        "json",
        env={"HELLO_API_TOKEN": token},
    )
    assert proc.returncode == 0, proc.stderr
    assert token not in proc.stdout and token not in proc.stderr
    assert "api_token = ********" in proc.stdout
    # ... but the host did get the real value
    assert f"api_token = {token}" in fleet.path(1, "/srv/hello/shared/hello.conf").read_text()
    text = _cli(
        "run",
        str(HELLO),
        "-i",
        str(fleet_inventory),
        "--diff",
        "--check",
        env={"HELLO_API_TOKEN": token + "-rotated"},
    )
    assert token not in text.stdout
    assert "api_token = ********" in text.stdout


def test_one_connection_per_host_and_batched_facts(fleet: Fleet, fleet_inventory: Path) -> None:
    conns: list[cdlib.api.Connection] = []

    def factory(host: cdlib.Host) -> cdlib.api.Connection:
        c = cdlib.api.connection_for(host)
        conns.append(c)
        return c

    cdlib.run(HELLO, fleet_inventory)
    conns.clear()
    events: list[dict[str, object]] = []
    again = cdlib.run(
        HELLO, fleet_inventory, connection_factory=factory, sinks=[CallbackSink(events.append)]
    )
    assert again.ok and again.changed() == set()
    assert len(conns) == 5
    for c in conns:
        assert c.stats.connects == 1
        # one batched fact read + the read-only check command
        assert c.stats.round_trips == 2
    assert events[-1]["event"] == "recap"


def test_host_keys_are_checked_by_default(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    inv = fleet.inventory(hosts=[1])
    host = inv["all"]["children"]["web"]["hosts"]["host1"]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host["cdlib_known_hosts_file"] = str(empty)
    import yaml

    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(inv))
    res = cdlib.run(HELLO, path)
    assert res.unreachable_hosts == ["host1"]
    assert "unknown" in res.results[0].msg and "known_hosts" in res.results[0].msg
    host["cdlib_host_key_policy"] = "accept-new"
    path.write_text(yaml.safe_dump(inv))
    res = cdlib.run(HELLO, path)
    assert res.ok
    # Recorded as ssh would (hashed when /etc/ssh/ssh_config says HashKnownHosts yes).
    from cdlib.connections import known_hosts

    assert len(known_hosts.lookup([str(empty)], fleet.host(1).address)) == 1


def _handler_play(fail: bool, flush: bool = False) -> cdlib.Play:
    """A config change that notifies a restart, then a smoke-like check that may fail."""
    play = cdlib.Play("handlers-demo", hosts="web")
    play.task(cdlib.tasks.file("/srv/hd/app.conf", content="port={{ port }}\n", notify="restart"))
    if flush:
        play.task(cdlib.tasks.flush_handlers())
    # Stands in for a smoke check; after a flush it passes only once the restart ran.
    check = "false" if fail else "test -s /srv/hd/restarts" if flush else "true"
    play.task(cdlib.tasks.command(check, read_only=True, name="smoke"))
    play.handler("restart", cdlib.tasks.command("echo restarted >> /srv/hd/restarts"))
    return play


def test_handlers_lost_to_a_failure_run_on_the_next_run(fleet: Fleet, tmp_path: Path) -> None:
    """A failed host keeps its notified handlers on the host; the next run runs them."""
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[1])
    fleet.ssh(1, "rm -rf /srv/hd /var/lib/cdlib/handlers && mkdir -p /srv/hd", check=True)
    restarts = fleet.path(1, "/srv/hd/restarts")
    markers = fleet.path(1, "/var/lib/cdlib/handlers")

    first = cdlib.run(_handler_play(fail=True), inv, extra_vars={"port": 1})
    assert not first.ok and not restarts.exists()
    assert len(list(markers.iterdir())) == 1  # the restart is remembered on the host

    # Check mode reports the pending restart and changes nothing (the marker stays).
    checked = cdlib.run(
        _handler_play(fail=False, flush=True), inv, extra_vars={"port": 1}, check=True
    )
    assert any(r.task == "restart" and r.status is Status.CHANGED for r in checked.results)
    assert len(list(markers.iterdir())) == 1

    # Nothing changes on the next run, yet the restart it still owes runs (then the check).
    second = cdlib.run(_handler_play(fail=False), inv, extra_vars={"port": 1})
    assert any(r.task == "pending handlers" for r in second.results)
    assert [r.task for r in second.results if r.handler] == ["restart"]
    assert restarts.read_text() == "restarted\n"
    assert list(markers.iterdir()) == []
    third = cdlib.run(_handler_play(fail=False), inv, extra_vars={"port": 1})
    assert third.ok and not any(r.handler for r in third.results)
    assert restarts.read_text() == "restarted\n"


def test_force_handlers_and_flush_handlers(fleet: Fleet, tmp_path: Path) -> None:
    inv = fleet.inventory_yaml(tmp_path / "inv.yml", hosts=[2])
    fleet.ssh(2, "rm -rf /srv/hd /var/lib/cdlib/handlers && mkdir -p /srv/hd", check=True)
    restarts = fleet.path(2, "/srv/hd/restarts")
    forced = cdlib.run(_handler_play(fail=True), inv, extra_vars={"port": 1}, force_handlers=True)
    assert not forced.ok and restarts.read_text() == "restarted\n"
    assert list(fleet.path(2, "/var/lib/cdlib/handlers").iterdir()) == []
    # flush_handlers: the restart runs before the check, which then passes.
    restarts.unlink()
    flushed = cdlib.run(_handler_play(fail=False, flush=True), inv, extra_vars={"port": 2})
    assert flushed.ok, [r.msg for r in flushed.results if r.status is Status.FAILED]
    order = [r.task for r in flushed.results]
    assert order.index("restart") < order.index("smoke")
    assert restarts.read_text() == "restarted\n"
    # With nothing notified it says so and runs no handler.
    again = cdlib.run(_handler_play(fail=False, flush=True), inv, extra_vars={"port": 2})
    assert [r.msg for r in again.results if r.task == "flush_handlers"] == ["no handlers notified"]
