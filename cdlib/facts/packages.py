"""Installed packages on the host, through the OS's own package manager.

One fact reads /etc/os-release and, in the same snippet, asks the matching package
database (``dpkg-query`` on Debian-likes, ``rpm`` on RHEL-likes), so deciding what to
install costs one round trip whatever the OS.
"""

from __future__ import annotations

import shlex
from collections.abc import Hashable
from dataclasses import dataclass, field

from cdlib.facts.base import Fact
from cdlib.facts.system import OsInfo, parse_os_release

_SECTION = "@@cdlib-pkg "


@dataclass(frozen=True)
class PackageState:
    """What the package manager says about the requested packages.

    ``installed`` maps names to installed versions (missing names are not installed);
    ``candidates`` maps names to the version an upgrade would install (only read for
    ``state='latest'``; a name whose installed version is current maps to that version).
    """

    os: OsInfo
    manager: str | None
    installed: dict[str, str] = field(default_factory=dict)
    candidates: dict[str, str] = field(default_factory=dict)


class PackagesFact(Fact[PackageState]):
    """:class:`PackageState` of ``names``; with ``latest`` also the upgrade candidates."""

    def __init__(self, names: tuple[str, ...], latest: bool = False) -> None:
        self.names = tuple(sorted(set(names)))
        self.latest = latest

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("packages", self.names, self.latest)

    def command(self) -> str:
        """os-release, then the package database's answer for the names."""
        names = " ".join(shlex.quote(n) for n in self.names)
        apt_latest = f"; echo '{_SECTION}candidates'; apt-cache policy {names}"
        dnf_latest = f"; echo '{_SECTION}updates'; dnf -q check-update {names}"
        return (
            f"echo '{_SECTION}os'; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release; "
            '. /etc/os-release 2>/dev/null || . /usr/lib/os-release; case " $ID $ID_LIKE " in '
            '*" debian "*|*" ubuntu "*) '
            f"echo '{_SECTION}apt'; "
            f"dpkg-query -W -f '${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {names}"
            f"{apt_latest if self.latest else ''};; "
            '*" rhel "*|*" fedora "*|*" centos "*) '
            f"echo '{_SECTION}dnf'; rpm -q --qf '%{{NAME}}\\t%{{VERSION}}-%{{RELEASE}}\\n' {names}"
            f"{dnf_latest if self.latest else ''};; "
            "esac; true"
        )

    def parse(self, output: str, exit_code: int) -> PackageState:
        """Parse the sections."""
        return parse_packages(output)


def _sections(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(_SECTION):
            current = out.setdefault(line[len(_SECTION) :].strip(), [])
        elif current is not None:
            current.append(line)
    return out


def parse_packages(output: str) -> PackageState:
    """Pure parser of :class:`PackagesFact` output."""
    sec = _sections(output)
    info = parse_os_release("\n".join(sec.get("os", [])))
    if "apt" in sec:
        installed = parse_dpkg_query(sec["apt"])
        cands = parse_apt_policy(sec.get("candidates", []))
        return PackageState(info, "apt", installed, cands)
    if "dnf" in sec:
        installed = parse_rpm_query(sec["dnf"])
        updates = parse_dnf_check_update(sec.get("updates", []))
        cands = {n: updates.get(n, v) for n, v in installed.items()}
        return PackageState(info, "dnf", installed, cands)
    return PackageState(info, None)


def parse_dpkg_query(lines: list[str]) -> dict[str, str]:
    """``name<TAB>status-abbrev<TAB>version`` lines; only ``ii`` (installed) ones count."""
    out = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].strip() in ("ii", "hi"):
            out[parts[0].split(":")[0]] = parts[2]
    return out


def parse_apt_policy(lines: list[str]) -> dict[str, str]:
    """Candidate version per package from ``apt-cache policy`` (``(none)`` left out)."""
    out: dict[str, str] = {}
    name = None
    for line in lines:
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            name = line.rstrip()[:-1].split(":")[0]
        elif name and line.strip().startswith("Candidate:"):
            cand = line.split(":", 1)[1].strip()
            if cand != "(none)":
                out[name] = cand
    return out


def parse_rpm_query(lines: list[str]) -> dict[str, str]:
    """``name<TAB>version-release`` lines; ``package X is not installed`` lines are skipped."""
    out = {}
    for line in lines:
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] and " " not in parts[0]:
            out[parts[0]] = parts[1]
    return out


def parse_dnf_check_update(lines: list[str]) -> dict[str, str]:
    """Available upgrades from ``dnf -q check-update``: ``name.arch  version  repo`` lines."""
    out = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and "." in parts[0] and not line[0].isspace():
            name = parts[0].rsplit(".", 1)[0]
            out[name] = parts[1]
        if line.startswith("Obsoleting"):
            break
    return out
