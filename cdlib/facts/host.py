"""Host facts: a small Ansible-like fact set (OS, CPU, memory, address, Python) in one read.

One :class:`HostFactsFact` command prints labelled sections (os-release, uname, hostname,
``/proc/cpuinfo``, ``/proc/meminfo``, the route to a public address, the Python version);
:func:`parse_host_facts` turns them into :class:`HostFacts`. The names and values follow
Ansible's ``setup`` module for the same facts (``ansible_distribution`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from cdlib.facts.base import Fact
from cdlib.facts.system import parse_os_release

#: os-release ``ID`` -> the distribution name Ansible reports.
_DISTRIBUTION = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "raspbian": "Raspbian",
    "linuxmint": "Linux Mint",
    "devuan": "Devuan",
    "kali": "Kali",
    "pop": "Pop!_OS",
    "rhel": "RedHat",
    "centos": "CentOS",
    "fedora": "Fedora",
    "rocky": "Rocky",
    "almalinux": "AlmaLinux",
    "ol": "OracleLinux",
    "amzn": "Amazon",
    "alpine": "Alpine",
    "arch": "Archlinux",
    "sles": "SLES",
    "opensuse-leap": "openSUSE Leap",
    "opensuse-tumbleweed": "openSUSE Tumbleweed",
    "gentoo": "Gentoo",
}
#: distribution -> Ansible's ``os_family``; a distribution not listed is its own family.
_FAMILY = {
    **dict.fromkeys(
        ["Debian", "Ubuntu", "Raspbian", "Linux Mint", "Devuan", "Kali", "Pop!_OS"], "Debian"
    ),
    **dict.fromkeys(
        ["RedHat", "CentOS", "Fedora", "Rocky", "AlmaLinux", "OracleLinux", "Amazon"], "RedHat"
    ),
    **dict.fromkeys(["SLES", "openSUSE Leap", "openSUSE Tumbleweed"], "Suse"),
}

_SECTIONS = (
    ("os-release", "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"),
    ("debian_version", "cat /etc/debian_version"),
    ("alpine-release", "cat /etc/alpine-release"),
    ("arch", "uname -m"),
    ("node", "uname -n"),
    ("fqdn", "hostname -f"),
    ("cpuinfo", "grep -E '^(processor|physical id)' /proc/cpuinfo"),
    ("meminfo", "grep '^MemTotal:' /proc/meminfo"),
    # Asks the routing table which source address and interface reach the internet;
    # sends nothing (Ansible asks the same way).
    ("route", "ip -4 route get 1.0.0.1"),
    (
        "python",
        "for p in python3 python; do command -v $p >/dev/null && $p --version 2>&1 && break; done",
    ),
)


@dataclass(frozen=True)
class HostFacts:
    """The host facts cdlib gathers; Ansible's names are in :meth:`ansible_vars`.

    ``processor_count`` is the number of CPU sockets and ``processor_vcpus`` the number of
    logical CPUs, as Ansible counts them; ``default_ipv4`` holds ``address``, ``interface``
    and ``gateway`` of the default IPv4 route (empty without one); ``python_version`` is
    ``None`` when the host has no Python.
    """

    os_family: str = ""
    distribution: str = ""
    distribution_version: str = ""
    distribution_major_version: str = ""
    distribution_release: str = ""
    architecture: str = ""
    hostname: str = ""
    nodename: str = ""
    fqdn: str = ""
    processor_count: int = 0
    processor_vcpus: int = 0
    memtotal_mb: int = 0
    default_ipv4: dict[str, str] = field(default_factory=dict)
    python_version: str | None = None

    def as_vars(self) -> dict[str, Any]:
        """The facts as template variables (``facts.distribution`` ...)."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}

    def ansible_vars(self) -> dict[str, Any]:
        """The same facts under Ansible's names (``ansible_distribution`` ...)."""
        out = {f"ansible_{k}": v for k, v in self.as_vars().items()}
        out["ansible_nodename"] = self.nodename
        return out


#: Names a template uses to read host facts; a task using one is rendered after gathering.
FACT_VARIABLES = frozenset({"facts", *HostFacts().ansible_vars()})

#: Stand-in values used to validate templates before the real facts are read.
PLACEHOLDER = HostFacts(
    distribution_version="0",
    distribution_major_version="0",
    processor_count=1,
    processor_vcpus=1,
    default_ipv4={"address": "", "interface": "", "gateway": ""},
    python_version="0.0.0",
)


def fact_vars(facts: HostFacts) -> dict[str, Any]:
    """Every variable the facts add: ``facts`` and the ``ansible_*`` names."""
    return {"facts": facts.as_vars(), **facts.ansible_vars()}


def host_facts_command() -> str:
    """The sh snippet printing every section :func:`parse_host_facts` reads."""
    return "\n".join(f"echo '@@ {name}'; ( {cmd} ) 2>/dev/null" for name, cmd in _SECTIONS)


def parse_host_facts(output: str) -> HostFacts:
    """Pure parser of :func:`host_facts_command` output."""
    sec = _sections(output)
    osr_text = sec.get("os-release", "")
    osr = parse_os_release(osr_text)
    values = _os_release_values(osr_text)
    dist = _DISTRIBUTION.get(osr.id) or values.get("NAME", "").split(" ")[0] or "Unknown"
    version = osr.version_id
    debian_version = sec.get("debian_version", "").strip()
    if dist == "Debian" and re.fullmatch(r"\d+(\.\d+)*", debian_version):
        version = debian_version  # point release, as Ansible reports it (12.5, not 12)
    alpine = sec.get("alpine-release", "").strip()
    if dist == "Alpine" and alpine:
        version = alpine
    node = sec.get("node", "").strip()
    return HostFacts(
        os_family=_FAMILY.get(dist, dist),
        distribution=dist,
        distribution_version=version,
        distribution_major_version=version.split(".")[0],
        distribution_release=values.get("VERSION_CODENAME", ""),
        architecture=sec.get("arch", "").strip(),
        hostname=node.split(".")[0],
        nodename=node,
        fqdn=sec.get("fqdn", "").strip() or node,
        **_cpus(sec.get("cpuinfo", "")),
        memtotal_mb=_memtotal_mb(sec.get("meminfo", "")),
        default_ipv4=_route(sec.get("route", "")),
        python_version=_python(sec.get("python", "")),
    )


def _sections(output: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("@@ "):
            current = out.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _os_release_values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, raw = line.strip().partition("=")
        if sep:
            values[key] = raw.strip().strip("\"'")
    return values


def _cpus(text: str) -> dict[str, int]:
    vcpus = sum(1 for line in text.splitlines() if line.startswith("processor"))
    sockets = {
        line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("physical")
    }
    # Without "physical id" lines (many VMs, ARM) Ansible counts every CPU as a socket.
    return {"processor_count": len(sockets) or vcpus, "processor_vcpus": vcpus}


def _memtotal_mb(text: str) -> int:
    m = re.search(r"MemTotal:\s*(\d+)\s*kB", text)
    return int(m.group(1)) // 1024 if m else 0


def _route(text: str) -> dict[str, str]:
    words = text.split()
    out = {}
    for key, name in (("src", "address"), ("dev", "interface"), ("via", "gateway")):
        if key in words and words.index(key) + 1 < len(words):
            out[name] = words[words.index(key) + 1]
    return out if "address" in out else {}


def _python(text: str) -> str | None:
    m = re.search(r"Python (\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


class HostFactsFact(Fact[HostFacts]):
    """The host's :class:`HostFacts`, read in the run's batched fact read."""

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("host-facts",)

    def command(self) -> str:
        """Print every section."""
        return host_facts_command()

    def parse(self, output: str, exit_code: int) -> HostFacts:
        """Parse the sections."""
        return parse_host_facts(output)
