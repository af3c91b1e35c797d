"""Tasks for playbooks: ``from cdlib import tasks`` then ``tasks.file(...)``."""

from typing import TYPE_CHECKING, Any

from cdlib.engine.task import FlushHandlers
from cdlib.tasks.absent import Absent, absent
from cdlib.tasks.archive import Unarchive, unarchive
from cdlib.tasks.command import Command, command
from cdlib.tasks.copy import Copy, Fetch, copy, fetch
from cdlib.tasks.files import (
    Directory,
    File,
    Symlink,
    Template,
    directory,
    file,
    symlink,
    template,
)

# Eager, like ``command``: these functions share their module's name, and a lazily loaded
# submodule would shadow the function. The modules are light (engine and stdlib only).
# ``Release``/``release`` and ``Rollback``/``rollback`` are the deprecated old names.
from cdlib.tasks.install import Install, Release, install, release
from cdlib.tasks.install_rollback import InstallRollback, Rollback, install_rollback, rollback
from cdlib.tasks.lines import BlockInFile, LineInFile, block_in_file, line_in_file
from cdlib.tasks.mark_bad import MarkBad, mark_bad
from cdlib.tasks.packages import Package, package
from cdlib.tasks.pip import Pip, pip
from cdlib.tasks.service import Service, service
from cdlib.tasks.users import Group, UnixGroup, User, group, user

#: ``tasks.flush_handlers()``: run the handlers notified so far (Ansible's
#: ``meta: flush_handlers``); the engine runs them in its place.
flush_handlers = FlushHandlers

__all__ = [
    "Absent",
    "AutoScalingGroup",
    "BlockInFile",
    "Command",
    "Copy",
    "Directory",
    "ElbV2LoadBalancer",
    "Fetch",
    "File",
    "FlagFile",
    "FlagKill",
    "FlagRamp",
    "FlagSet",
    "FlushHandlers",
    "Group",
    "HAProxyConfig",
    "Install",
    "InstallRollback",
    "LaunchTemplate",
    "LineInFile",
    "MarkBad",
    "Package",
    "Pip",
    "Release",
    "Rollback",
    "SecurityGroup",
    "Service",
    "Smoke",
    "Symlink",
    "Template",
    "Unarchive",
    "UnixGroup",
    "User",
    "absent",
    "auto_scaling_group",
    "block_in_file",
    "command",
    "copy",
    "directory",
    "elbv2_load_balancer",
    "fetch",
    "file",
    "flag_file",
    "flag_kill",
    "flag_ramp",
    "flag_set",
    "flush_handlers",
    "group",
    "haproxy_config",
    "install",
    "install_rollback",
    "launch_template",
    "line_in_file",
    "mark_bad",
    "package",
    "pip",
    "release",
    "rollback",
    "security_group",
    "service",
    "smoke",
    "symlink",
    "template",
    "unarchive",
    "user",
]

if TYPE_CHECKING:
    from cdlib.tasks.aws_compute import (
        AutoScalingGroup,
        LaunchTemplate,
        SecurityGroup,
        auto_scaling_group,
        launch_template,
        security_group,
    )
    from cdlib.tasks.checks import Smoke, smoke
    from cdlib.tasks.flags import (
        FlagFile,
        FlagKill,
        FlagRamp,
        FlagSet,
        flag_file,
        flag_kill,
        flag_ramp,
        flag_set,
    )
    from cdlib.tasks.traffic import (
        ElbV2LoadBalancer,
        HAProxyConfig,
        elbv2_load_balancer,
        haproxy_config,
    )

#: Tasks whose modules pull in more (flags, checks, routers): loaded on first use.
_LAZY = {
    **{
        n: "cdlib.tasks.aws_compute"
        for n in (
            "AutoScalingGroup",
            "LaunchTemplate",
            "SecurityGroup",
            "auto_scaling_group",
            "launch_template",
            "security_group",
        )
    },
    "FlagFile": "cdlib.tasks.flags",
    "FlagKill": "cdlib.tasks.flags",
    "FlagRamp": "cdlib.tasks.flags",
    "FlagSet": "cdlib.tasks.flags",
    "flag_file": "cdlib.tasks.flags",
    "flag_kill": "cdlib.tasks.flags",
    "flag_ramp": "cdlib.tasks.flags",
    "flag_set": "cdlib.tasks.flags",
    "Smoke": "cdlib.tasks.checks",
    "smoke": "cdlib.tasks.checks",
    "ElbV2LoadBalancer": "cdlib.tasks.traffic",
    "HAProxyConfig": "cdlib.tasks.traffic",
    "elbv2_load_balancer": "cdlib.tasks.traffic",
    "haproxy_config": "cdlib.tasks.traffic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cdlib.tasks' has no attribute {name!r}")
