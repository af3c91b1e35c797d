"""``user`` and ``group``: local accounts through useradd/usermod/userdel and groupadd/groupmod.

Facts come from ``getent`` and are parsed by pure functions in :mod:`cdlib.facts.users`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from cdlib.connections.shell import q
from cdlib.engine.task import Affects, HostContext, Plan, Prediction, Task, absolute_path, option
from cdlib.facts.base import Fact
from cdlib.facts.users import GroupFact, GroupInfo, UserFact, UserInfo

# What useradd accepts (shadow-utils' default NAME_REGEX, plus upper case and dots).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")


def _name_check(option: str, value: str) -> str | None:
    if _NAME.match(value):
        return None
    return f"option {option!r}: {value!r} is not a valid user or group name"


def _group_check(option: str, value: str) -> str | None:
    # An empty group means "leave it alone", as None does.
    return _name_check(option, value) if value else None


def _home_check(option: str, value: str) -> str | None:
    # An empty home means "leave it alone", as None does.
    return absolute_path(option, value) if value else None


@dataclass(kw_only=True)
class UserPlan(Plan):
    """The account as read while planning (``None`` when planning stopped early)."""

    found: UserInfo | None = None


@dataclass(kw_only=True)
class GroupPlan(Plan):
    """The group to change with ``groupmod`` (``None``: create it)."""

    existing: GroupInfo | None = None


@dataclass
class User(Task[UserPlan]):
    """Ensure a local user exists with the given attributes, or does not exist.

    Options: ``username`` (first argument); ``uid``; ``group`` (primary group, which
    must exist); ``groups`` (supplementary groups; with ``append=True``, the default,
    missing ones are added and others kept; with ``append=False`` the user is in exactly
    these); ``home``; ``shell``; ``system`` (a system account: uid from the system
    range, no home created); ``create_home`` (default true for normal users); ``state``
    (``present``/``absent``); ``remove`` (with ``absent``, also delete the home
    directory). Check mode reports ``create user`` or each attribute that would change
    (``shell /bin/sh -> /bin/bash``).

    Example:
        ```python
        play.task(tasks.user("app", group="app", home="/srv/app", shell="/usr/sbin/nologin"))
        ```
    """

    username: str = field(metadata=option(templated=True, check=_name_check))
    uid: int | None = None
    group: str | None = field(default=None, metadata=option(templated=True, check=_group_check))
    groups: tuple[str, ...] | list[str] = field(
        default=(), metadata=option(templated=True, check=_name_check)
    )
    append: bool = True
    home: str | None = field(default=None, metadata=option(templated=True, check=_home_check))
    shell: str | None = field(default=None, metadata=option(templated=True))
    system: bool = False
    create_home: bool | None = None
    state: Literal["present", "absent"] = "present"
    remove: bool = False

    kind = "user"

    def validate(self) -> None:
        """Valid names; absolute home."""
        self.groups = tuple(self.groups)
        if self.uid is not None and self.uid < 0:
            raise self.error("option 'uid' must not be negative")

    def describe(self) -> str:
        """``user name``."""
        return f"user {self.username}"

    def facts(self) -> list[Fact[object]]:
        """The user's passwd entry and groups."""
        return [UserFact(self.username)]

    def plan(self, ctx: HostContext) -> UserPlan:
        """Compare each given attribute."""
        u: UserInfo = ctx.fact(UserFact(self.username))
        if self.state == "absent":
            if not u.exists:
                return UserPlan(ok_msg="absent")
            change = f"remove user {self.username}"
            if u.group == self.username:
                # userdel also removes a same-named private group (USERGROUPS_ENAB).
                change += f" (and its private group {u.group}, if no one else uses it)"
            return UserPlan(changes=[change], affects=Affects.EVERYTHING, found=u)
        if not u.exists:
            return UserPlan(
                changes=[f"create user {self.username}"], affects=Affects.EVERYTHING, found=u
            )
        changes = []
        if self.uid is not None and u.uid != self.uid:
            changes.append(f"uid {u.uid} -> {self.uid}")
        if self.group and self.group != u.group and self.group != str(u.gid):
            changes.append(f"group {u.group} -> {self.group}")
        want = set(self.groups)
        have = set(u.groups)
        if self.append and not want <= have:
            changes.append(f"add to groups {','.join(sorted(want - have))}")
        if not self.append and want != have:
            changes.append(f"groups {','.join(sorted(have))} -> {','.join(sorted(want))}")
        if self.home and u.home != self.home:
            changes.append(f"home {u.home} -> {self.home}")
        if self.shell and u.shell != self.shell:
            changes.append(f"shell {u.shell} -> {self.shell}")
        return UserPlan(changes=changes, affects=Affects.EVERYTHING, ok_msg="as wanted", found=u)

    def predict(self, plan: UserPlan) -> list[Prediction] | None:
        """The account (and a private group useradd/userdel makes or removes) afterwards."""
        u = plan.found
        if u is None:
            return None
        if self.state == "absent":
            out: list[Prediction] = [(UserFact(self.username), UserInfo(self.username))]
            if u.group == self.username:
                out.append((GroupFact(self.username), GroupInfo(self.username)))
            return out
        group = self.group or u.group
        out = []
        if not u.exists and not self.group:
            # useradd makes a same-named private group (USERGROUPS_ENAB, the usual default).
            group = self.username
            out.append((GroupFact(self.username), GroupInfo(self.username, exists=True)))
        want = tuple(self.groups)
        groups = tuple(sorted(set(u.groups) | set(want))) if self.append else want
        after = UserInfo(
            self.username,
            exists=True,
            uid=self.uid if self.uid is not None else u.uid,
            gid=u.gid,
            group=group,
            groups=groups,
            home=self.home or u.home,
            shell=self.shell or u.shell,
        )
        out.append((UserFact(self.username), after))
        return out

    def apply(self, ctx: HostContext, plan: UserPlan) -> str | None:
        """One useradd, usermod or userdel."""
        u = plan.found if plan.found is not None and plan.found.exists else None
        if self.state == "absent":
            rm = "-r " if self.remove else ""
            ctx.run(f"userdel {rm}-- {q(self.username)}")
            return None
        args: list[str] = []
        if self.uid is not None:
            args += ["-u", str(self.uid)]
        if self.group:
            args += ["-g", self.group]
        if self.home:
            args += ["-d", self.home]
        if self.shell:
            args += ["-s", self.shell]
        if u is None:
            if self.groups:
                args += ["-G", ",".join(self.groups)]
            if self.system:
                args.append("-r")
            create = self.create_home if self.create_home is not None else not self.system
            args.append("-m" if create else "-M")
            ctx.run(f"useradd {' '.join(q(a) for a in args)} -- {q(self.username)}")
            return None
        want, have = set(self.groups), set(u.groups)
        if self.append and not want <= have:
            args += ["-a", "-G", ",".join(self.groups)]
        elif not self.append and want != have:
            args += ["-G", ",".join(self.groups)]
        ctx.run(f"usermod {' '.join(q(a) for a in args)} -- {q(self.username)}")
        return None


@dataclass
class UnixGroup(Task[GroupPlan]):
    """Ensure a local (Unix) group exists (with ``gid``) or does not exist.

    Options: ``groupname`` (first argument); ``gid``; ``system`` (gid from the system
    range); ``state`` (``present``/``absent``). Check mode reports ``create group``,
    ``gid A -> B`` or ``remove group``.

    Example:
        ```python
        play.task(tasks.group("app", system=True))
        ```
    """

    groupname: str = field(metadata=option(templated=True, check=_name_check))
    gid: int | None = None
    system: bool = False
    state: Literal["present", "absent"] = "present"

    kind = "group"

    def validate(self) -> None:
        """Valid name."""
        if self.gid is not None and self.gid < 0:
            raise self.error("option 'gid' must not be negative")

    def describe(self) -> str:
        """``group name``."""
        return f"group {self.groupname}"

    def facts(self) -> list[Fact[object]]:
        """The group entry."""
        return [GroupFact(self.groupname)]

    def plan(self, ctx: HostContext) -> GroupPlan:
        """Exists? Right gid?"""
        g: GroupInfo = ctx.fact(GroupFact(self.groupname))
        if self.state == "absent":
            if not g.exists:
                return GroupPlan(ok_msg="absent")
            return GroupPlan(changes=[f"remove group {self.groupname}"], affects=Affects.EVERYTHING)
        if not g.exists:
            return GroupPlan(changes=[f"create group {self.groupname}"], affects=Affects.EVERYTHING)
        if self.gid is not None and g.gid != self.gid:
            return GroupPlan(
                changes=[f"gid {g.gid} -> {self.gid}"], existing=g, affects=Affects.EVERYTHING
            )
        return GroupPlan(ok_msg=f"gid {g.gid}")

    def predict(self, plan: GroupPlan) -> list[Prediction] | None:
        """The group afterwards."""
        if self.state == "absent":
            return [(GroupFact(self.groupname), GroupInfo(self.groupname))]
        return [(GroupFact(self.groupname), GroupInfo(self.groupname, True, self.gid))]

    def apply(self, ctx: HostContext, plan: GroupPlan) -> str | None:
        """One groupadd, groupmod or groupdel."""
        name = q(self.groupname)
        if self.state == "absent":
            ctx.run(f"groupdel -- {name}")
        elif plan.existing is None:
            gid = f"-g {self.gid} " if self.gid is not None else ""
            ctx.run(f"groupadd {gid}{'-r ' if self.system else ''}-- {name}")
        else:
            ctx.run(f"groupmod -g {self.gid} -- {name}")
        return None


#: Lowercase aliases, as playbooks usually spell tasks.
user = User
group = UnixGroup

#: Deprecated: the old class name of :class:`UnixGroup` (an inventory group is
#: :class:`cdlib.inventory.Group`).
Group = UnixGroup
