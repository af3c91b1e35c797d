"""Host facts on the SSH fleet: right values, and no round trip of their own."""

from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path

import pytest

import cdlib
from cdlib import Play, tasks
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _play(name: str, *, facts: bool) -> Play:
    play = Play(name, hosts="all", gather_facts=facts)
    for i in range(3):
        play.task(tasks.file(f"/srv/facts-{i}", content="x\n"))
    if facts:
        play.task(
            tasks.file(
                "/srv/facts.txt",
                content="{{ ansible_distribution }} {{ ansible_distribution_major_version }} "
                "{{ facts.architecture }} {{ ansible_default_ipv4.address }} "
                "{{ ansible_hostname }} {{ ansible_processor_vcpus }} "
                "{{ ansible_python_version is not none }}\n",
                when="ansible_os_family == 'Debian'",
            )
        )
    else:
        play.task(tasks.file("/srv/plain.txt", content="plain\n"))
    return play


def _round_trips(play: Play, inventory: Path) -> tuple[cdlib.RunResult, dict[str, int]]:
    conns: dict[str, cdlib.api.Connection] = {}

    def factory(host: cdlib.Host) -> cdlib.api.Connection:
        conns[host.name] = c = cdlib.api.connection_for(host)
        return c

    res = cdlib.run(play, inventory, connection_factory=factory)
    for c in conns.values():
        c.close()
    return res, {h: c.stats.round_trips for h, c in conns.items()}


def test_facts_match_the_hosts_and_cost_no_round_trip(fleet: Fleet, fleet_inventory: Path) -> None:
    # Everything but the facts' use is the same; run each twice so the second run of each
    # is the no-change run, whose cost is all fact reads.
    for facts in (False, True):
        _round_trips(_play("warm", facts=facts), fleet_inventory)
    plain, plain_trips = _round_trips(_play("plain", facts=False), fleet_inventory)
    gathered, fact_trips = _round_trips(_play("facts", facts=True), fleet_inventory)
    assert plain.ok and gathered.ok
    assert fact_trips == plain_trips, (plain_trips, fact_trips)
    route = subprocess.run(
        ["ip", "-4", "route", "get", "1.0.0.1"], capture_output=True, text=True, check=True
    ).stdout.split()
    address = route[route.index("src") + 1]
    major = Path("/etc/debian_version").read_text().split(".")[0]
    hostname = socket.gethostname().split(".")[0]
    cpus = str(
        len(
            [
                ln
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("processor")
            ]
        )
    )
    expected = f"Debian {major} {platform.machine()} {address} {hostname} {cpus} True\n"
    for k in range(1, fleet.n + 1):
        assert fleet.path(k, "/srv/facts.txt").read_text() == expected
