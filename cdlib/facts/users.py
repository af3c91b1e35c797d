"""Facts about users and groups, from ``getent`` (so LDAP/NSS users count too)."""

from __future__ import annotations

import shlex
from collections.abc import Hashable
from dataclasses import dataclass

from cdlib.facts.base import Fact


@dataclass(frozen=True)
class UserInfo:
    """A user account; ``exists`` False when there is none by that name."""

    name: str
    exists: bool = False
    uid: int | None = None
    gid: int | None = None
    group: str | None = None
    groups: tuple[str, ...] = ()
    home: str | None = None
    shell: str | None = None


@dataclass(frozen=True)
class GroupInfo:
    """A group; ``exists`` False when there is none by that name."""

    name: str
    exists: bool = False
    gid: int | None = None
    members: tuple[str, ...] = ()


class UserFact(Fact[UserInfo]):
    """:class:`UserInfo` of one user: passwd entry, primary group name, supplementary groups."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("user", self.name)

    def command(self) -> str:
        """passwd line, then the primary group's line, then ``id -Gn``."""
        n = shlex.quote(self.name)
        return (
            f"l=$(getent passwd {n}) || exit 2; printf 'passwd=%s\\n' \"$l\"; "
            'g=$(printf %s "$l" | cut -d: -f4); '
            'printf \'group=%s\\n\' "$(getent group "$g")"; '
            f"printf 'groups=%s\\n' \"$(id -Gn {n})\""
        )

    def parse(self, output: str, exit_code: int) -> UserInfo:
        """Parse; exit code 2 means no such user."""
        return parse_user(self.name, output, exit_code)


def parse_user(name: str, output: str, exit_code: int) -> UserInfo:
    """Pure parser of :class:`UserFact` output."""
    fields: dict[str, str] = {}
    for line in output.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            fields.setdefault(k, v)
    pw = fields.get("passwd", "").split(":")
    if exit_code != 0 or len(pw) < 7:
        return UserInfo(name)
    primary = fields.get("group", "").split(":")[0] or None
    groups = tuple(g for g in fields.get("groups", "").split() if g != primary)
    return UserInfo(
        name=name,
        exists=True,
        uid=int(pw[2]),
        gid=int(pw[3]),
        group=primary,
        groups=groups,
        home=pw[5],
        shell=pw[6],
    )


class GroupFact(Fact[GroupInfo]):
    """:class:`GroupInfo` of one group."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("group", self.name)

    def command(self) -> str:
        """``getent group``."""
        return f"getent group {shlex.quote(self.name)}"

    def parse(self, output: str, exit_code: int) -> GroupInfo:
        """Parse the group line; exit code 2 means no such group."""
        return parse_group(self.name, output, exit_code)


def parse_group(name: str, output: str, exit_code: int) -> GroupInfo:
    """Pure parser of a ``getent group`` line."""
    parts = output.strip().split(":")
    if exit_code != 0 or len(parts) < 4:
        return GroupInfo(name)
    members = tuple(m for m in parts[3].split(",") if m)
    return GroupInfo(name, True, int(parts[2]), members)
