"""Host facts: the pure parser on canned output, and their use in templates on local hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cdlib
from cdlib import Host, Inventory, Play, tasks
from cdlib.connections.base import CommandResult
from cdlib.engine.errors import PlaybookError
from cdlib.facts.host import parse_host_facts

DEBIAN = """@@ os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
@@ debian_version
12.5
@@ alpine-release
@@ arch
x86_64
@@ node
web1.example.com
@@ fqdn
web1.example.com
@@ cpuinfo
processor\t: 0
physical id\t: 0
processor\t: 1
physical id\t: 0
processor\t: 2
physical id\t: 1
processor\t: 3
physical id\t: 1
@@ meminfo
MemTotal:        4028440 kB
@@ route
1.0.0.1 via 10.0.0.1 dev ens3 src 10.0.0.7 uid 0
    cache
@@ python
Python 3.11.2
"""

ALPINE = """@@ os-release
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
@@ debian_version
@@ alpine-release
3.19.1
@@ arch
aarch64
@@ node
box
@@ fqdn
@@ cpuinfo
processor\t: 0
processor\t: 1
@@ meminfo
MemTotal:        1024000 kB
@@ route
@@ python
"""

RHEL = """@@ os-release
NAME="Red Hat Enterprise Linux"
VERSION_ID="9.3"
ID="rhel"
ID_LIKE="fedora"
@@ arch
x86_64
@@ node
db
@@ fqdn
db.internal
@@ cpuinfo
processor\t: 0
@@ meminfo
MemTotal: 2048 kB
@@ route
1.0.0.1 dev eth0 src 172.16.0.4 uid 0
@@ python
Python 3.9.18
"""


def test_parse_debian() -> None:
    f = parse_host_facts(DEBIAN)
    assert (f.distribution, f.os_family, f.distribution_version) == ("Debian", "Debian", "12.5")
    assert f.distribution_major_version == "12" and f.distribution_release == "bookworm"
    assert (f.hostname, f.fqdn, f.architecture) == ("web1", "web1.example.com", "x86_64")
    assert (f.processor_count, f.processor_vcpus, f.memtotal_mb) == (2, 4, 3934)
    assert f.default_ipv4 == {"address": "10.0.0.7", "interface": "ens3", "gateway": "10.0.0.1"}
    assert f.python_version == "3.11.2"
    a = f.ansible_vars()
    assert a["ansible_distribution"] == "Debian" and a["ansible_processor_vcpus"] == 4
    assert a["ansible_default_ipv4"]["address"] == "10.0.0.7"


def test_parse_alpine_without_python_or_route() -> None:
    f = parse_host_facts(ALPINE)
    assert (f.distribution, f.os_family, f.distribution_version) == ("Alpine", "Alpine", "3.19.1")
    assert (f.architecture, f.hostname, f.fqdn) == ("aarch64", "box", "box")
    assert (f.processor_count, f.processor_vcpus) == (2, 2)  # no socket ids: one per CPU
    assert f.default_ipv4 == {} and f.python_version is None


def test_parse_rhel() -> None:
    f = parse_host_facts(RHEL)
    assert (f.distribution, f.os_family, f.distribution_version) == ("RedHat", "RedHat", "9.3")
    assert f.default_ipv4 == {"address": "172.16.0.4", "interface": "eth0"}
    assert f.memtotal_mb == 2 and f.python_version == "3.9.18" and f.fqdn == "db.internal"


def _inv(tmp_path: Path) -> Inventory:
    return Inventory([Host("h1", {"ansible_connection": "local", "dir": str(tmp_path)})])


def test_facts_render_in_when_and_options(tmp_path: Path) -> None:
    import platform

    play = Play("p")
    play.task(
        tasks.file(
            "{{ dir }}/os",
            content="{{ facts.distribution }} {{ ansible_architecture }}\n",
            when="ansible_os_family != 'NoSuchFamily'",
        )
    )
    play.task(tasks.file("{{ dir }}/never", content="x", when="facts.memtotal_mb < 1"))
    res = cdlib.run(play, _inv(tmp_path))
    assert res.ok, [r.msg for r in res.results]
    dist = parse_host_facts("@@ os-release\n" + Path("/etc/os-release").read_text()).distribution
    assert (tmp_path / "os").read_text() == f"{dist} {platform.machine()}\n"
    assert not (tmp_path / "never").exists()


def test_play_vars_override_facts_and_undefined_names_fail_validation(tmp_path: Path) -> None:
    play = Play("p", vars={"ansible_architecture": "mine"})
    play.task(tasks.file("{{ dir }}/a", content="{{ ansible_architecture }}"))
    play.task(tasks.file("{{ dir }}/b", content="{{ facts.hostname }}"))
    assert cdlib.run(play, _inv(tmp_path)).ok
    assert (tmp_path / "a").read_text() == "mine"
    bad = Play("bad")
    bad.task(tasks.file("{{ dir }}/c", content="{{ facts.hostname }} {{ nope }}"))
    with pytest.raises(PlaybookError, match="nope"):
        cdlib.run(bad, _inv(tmp_path))
    assert not (tmp_path / "c").exists()


def test_plays_without_facts_do_not_read_them(tmp_path: Path) -> None:
    seen: list[str] = []

    from cdlib.connections.local import LocalConnection

    class Spy(LocalConnection):
        def run(self, command: str, **kw: Any) -> CommandResult:
            seen.append(command)
            return super().run(command, **kw)

    play = Play("p")
    play.task(tasks.file("{{ dir }}/a", content="x"))
    assert cdlib.run(play, _inv(tmp_path), connection_factory=lambda h: Spy(h.name)).ok
    assert seen and not any("/proc/meminfo" in c for c in seen)
    play2 = Play("p2", gather_facts=True)
    play2.task(tasks.file("{{ dir }}/b", content="x"))
    seen.clear()
    assert cdlib.run(play2, _inv(tmp_path), connection_factory=lambda h: Spy(h.name)).ok
    assert sum("/proc/meminfo" in c for c in seen) == 1


def test_a_handler_that_fails_to_render_with_the_facts_fails_when_notified(
    tmp_path: Path,
    keep_handler_markers: None,
) -> None:
    """Rendered again with the host's facts (it uses them), a handler that fails there
    is a failed handler, never one silently skipped and forgotten."""

    broken = Play(f"deferred handler {tmp_path}")  # markers are keyed by play
    broken.task(tasks.file("{{ dir }}/conf", content="1", notify="reload"))
    broken.handler(
        "reload", tasks.file("{{ dir }}/reloaded", content="{{ 1 // (facts.memtotal_mb * 0) }}")
    )
    res = cdlib.run(broken, _inv(tmp_path))
    assert not res.ok
    failed = [r for r in res.results if r.status is cdlib.Status.FAILED]
    assert [(r.task, r.handler) for r in failed] == [("reload", True)]
    assert "ZeroDivisionError" in failed[0].msg and not (tmp_path / "reloaded").exists()
    # Still pending: a fixed handler runs on the next run (and clears its marker).
    fixed = Play(f"deferred handler {tmp_path}")
    fixed.task(tasks.file("{{ dir }}/conf", content="1", notify="reload"))
    fixed.handler("reload", tasks.file("{{ dir }}/reloaded", content="{{ facts.hostname }}"))
    assert cdlib.run(fixed, _inv(tmp_path)).ok and (tmp_path / "reloaded").exists()
