"""``package``: OS packages through apt (Debian/Ubuntu) or dnf (RHEL-likes), picked from facts."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal

from cdlib.connections.shell import q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import Affects, HostContext, Plan, Prediction, Task, option
from cdlib.facts.base import Fact
from cdlib.facts.packages import PackagesFact, PackageState

_PKG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")
#: apt waits this long for another apt/dpkg to release its lock instead of failing at once.
_APT_LOCK_WAIT = 300


@dataclass(frozen=True)
class _Todo:
    install: tuple[str, ...] = ()
    upgrade: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


def package_commands(manager: str, todo: _Todo, update_cache: bool = False) -> list[str]:
    """The package manager commands that carry out ``todo`` (pure; unit-tested)."""
    cmds = []
    if manager == "apt":
        apt = (
            f"DEBIAN_FRONTEND=noninteractive apt-get -q -y "
            f"-o DPkg::Lock::Timeout={_APT_LOCK_WAIT} -o Dpkg::Options::=--force-confold"
        )
        if update_cache:
            cmds.append(f"{apt} update")
        if todo.install or todo.upgrade:
            cmds.append(f"{apt} install " + " ".join(q(n) for n in todo.install + todo.upgrade))
        if todo.remove:
            cmds.append(f"{apt} remove " + " ".join(q(n) for n in todo.remove))
    elif manager == "dnf":
        dnf = "dnf -y -q"
        if update_cache:
            cmds.append(f"{dnf} makecache")
        if todo.install:
            cmds.append(f"{dnf} install " + " ".join(q(n) for n in todo.install))
        if todo.upgrade:
            cmds.append(f"{dnf} upgrade " + " ".join(q(n) for n in todo.upgrade))
        if todo.remove:
            cmds.append(f"{dnf} remove " + " ".join(q(n) for n in todo.remove))
    else:
        raise ValueError(f"unknown package manager {manager!r}")
    return cmds


def decide(names: tuple[str, ...], state: str, pkgs: PackageState) -> _Todo:
    """What to install, upgrade and remove to reach ``state`` (pure; unit-tested)."""
    if state == "absent":
        return _Todo(remove=tuple(n for n in names if n in pkgs.installed))
    missing = tuple(n for n in names if n not in pkgs.installed)
    if state == "present":
        return _Todo(install=missing)
    outdated = tuple(
        n
        for n in names
        if n in pkgs.installed and pkgs.candidates.get(n, pkgs.installed[n]) != pkgs.installed[n]
    )
    return _Todo(install=missing, upgrade=outdated)


def _package_name(option: str, value: str) -> str | None:
    if _PKG_NAME.match(value):
        return None
    return f"option {option!r}: {value!r} is not a valid package name"


@dataclass(kw_only=True)
class PackagePlan(Plan):
    """The packages read, the manager to run and what it must do."""

    found: PackageState
    manager: str
    todo: _Todo


@dataclass
class Package(Task[PackagePlan]):
    """Ensure OS packages are installed, at the latest version, or removed.

    Options: ``names`` (one name or a list); ``state`` (``present``, ``latest`` or
    ``absent``); ``update_cache`` (refresh the package lists before installing; only in
    a real run, so check mode judges ``latest`` from the lists as they are). The OS
    family comes from /etc/os-release: apt (``dpkg-query`` for what is installed,
    ``apt-get install -y`` non-interactively, waiting for a busy dpkg lock) on
    Debian/Ubuntu, dnf (``rpm -q``) on RHEL, CentOS, Rocky, Alma, Fedora. Other systems
    fail with a message naming the OS. Check mode reports ``install a, b``, ``upgrade c
    1.0 -> 1.1`` or ``remove d``.

    Example:
        ```python
        play.task(tasks.package(["haproxy", "supervisor"], update_cache=True))
        ```
    """

    names: str | tuple[str, ...] | list[str] = field(
        metadata=option(templated=True, check=_package_name)
    )
    state: Literal["present", "latest", "absent"] = "present"
    update_cache: bool = False

    kind = "package"

    def validate(self) -> None:
        """At least one valid package name."""
        self.names = (self.names,) if isinstance(self.names, str) else tuple(self.names)
        if not self.names:
            raise self.error("option 'names' is empty")

    @property
    def _names(self) -> tuple[str, ...]:
        return (self.names,) if isinstance(self.names, str) else tuple(self.names)

    def describe(self) -> str:
        """``package a, b``."""
        return f"package {', '.join(self._names)}"

    def facts(self) -> list[Fact[object]]:
        """OS family and the packages' installed versions, in one snippet."""
        return [PackagesFact(self._names, latest=self.state == "latest")]

    def plan(self, ctx: HostContext) -> PackagePlan:
        """Compare installed versions with the wanted state."""
        pkgs: PackageState = ctx.fact(PackagesFact(self._names, latest=self.state == "latest"))
        if pkgs.manager is None:
            raise TaskFailed(
                f"no supported package manager for OS {pkgs.os.id or 'unknown'!r} "
                "(apt on Debian/Ubuntu, dnf on RHEL-likes)"
            )
        todo = decide(self._names, self.state, pkgs)
        changes = []
        if todo.install:
            changes.append(f"install {', '.join(todo.install)}")
        for n in todo.upgrade:
            changes.append(f"upgrade {n} {pkgs.installed[n]} -> {pkgs.candidates[n]}")
        if todo.remove:
            changes.append(f"remove {', '.join(todo.remove)}")
        return PackagePlan(
            changes=changes,
            manager=pkgs.manager,
            todo=todo,
            affects=Affects.EVERYTHING,
            found=pkgs,
            ok_msg=", ".join(f"{n} {pkgs.installed.get(n, 'absent')}" for n in self._names),
        )

    def predict(self, plan: PackagePlan) -> list[Prediction] | None:
        """Installed versions afterwards (candidates become installed)."""
        pkgs, todo = plan.found, plan.todo
        installed = dict(pkgs.installed)
        for n in (*todo.install, *todo.upgrade):
            installed[n] = pkgs.candidates.get(n, "(new)")
        for n in todo.remove:
            installed.pop(n, None)
        after = dataclasses.replace(pkgs, installed=installed)
        return [(PackagesFact(self._names, latest=self.state == "latest"), after)]

    def apply(self, ctx: HostContext, plan: PackagePlan) -> str | None:
        """Run the package manager (one command)."""
        manager, todo = plan.manager, plan.todo
        ctx.run(" && ".join(package_commands(manager, todo, self.update_cache)), timeout=1800)
        return None


#: Lowercase alias, as playbooks usually spell tasks.
package = Package
