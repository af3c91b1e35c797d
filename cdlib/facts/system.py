"""Facts about the host system: OS family (from /etc/os-release) and available tools."""

from __future__ import annotations

import shlex
from collections.abc import Hashable
from dataclasses import dataclass

from cdlib.facts.base import Fact

_DEBIAN = {"debian", "ubuntu", "raspbian", "linuxmint", "pop", "devuan", "kali"}
_REDHAT = {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn", "redhat"}


@dataclass(frozen=True)
class OsInfo:
    """The host's OS from /etc/os-release; ``family`` is ``debian``, ``redhat`` or ``unknown``."""

    id: str
    id_like: tuple[str, ...]
    version_id: str
    family: str

    @property
    def package_manager(self) -> str | None:
        """``apt`` on Debian-likes, ``dnf`` on RHEL-likes, else ``None``."""
        return {"debian": "apt", "redhat": "dnf"}.get(self.family)


def parse_os_release(text: str) -> OsInfo:
    """Pure parser of /etc/os-release (``KEY=value`` lines, values maybe quoted)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = " ".join(parts)
    os_id = values.get("ID", "").lower()
    like = tuple(values.get("ID_LIKE", "").lower().split())
    return OsInfo(os_id, like, values.get("VERSION_ID", ""), os_family(os_id, like))


def os_family(os_id: str, id_like: tuple[str, ...] = ()) -> str:
    """``debian``, ``redhat`` or ``unknown`` from os-release ``ID`` and ``ID_LIKE``."""
    for name in (os_id, *id_like):
        if name in _DEBIAN:
            return "debian"
        if name in _REDHAT:
            return "redhat"
    return "unknown"


class OsFact(Fact[OsInfo]):
    """The host's :class:`OsInfo`."""

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("os",)

    def command(self) -> str:
        """Print /etc/os-release (or /usr/lib/os-release)."""
        return "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"

    def parse(self, output: str, exit_code: int) -> OsInfo:
        """Parse os-release."""
        return parse_os_release(output)


class ToolsFact(Fact[dict[str, str]]):
    """Which of ``tools`` are on the host's PATH: a mapping name -> path (missing ones absent)."""

    def __init__(self, *tools: str) -> None:
        self.tools = tuple(sorted(set(tools)))

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("tools", self.tools)

    def command(self) -> str:
        """``command -v`` each tool."""
        return "; ".join(
            f'printf "%s=%s\\n" {shlex.quote(t)} "$(command -v {shlex.quote(t)})"'
            for t in self.tools
        )

    def parse(self, output: str, exit_code: int) -> dict[str, str]:
        """Tools found, with their paths."""
        return parse_tools(output)


def parse_tools(output: str) -> dict[str, str]:
    """Pure parser of :class:`ToolsFact` output."""
    found = {}
    for line in output.splitlines():
        name, sep, path = line.partition("=")
        if sep and path.strip():
            found[name] = path.strip()
    return found
