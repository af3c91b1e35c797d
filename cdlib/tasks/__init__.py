"""Tasks for playbooks: ``from cdlib import tasks`` then ``tasks.file(...)``."""

from typing import TYPE_CHECKING, Any

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
from cdlib.tasks.lines import BlockInFile, LineInFile, block_in_file, line_in_file
from cdlib.tasks.packages import Package, package
from cdlib.tasks.pip import Pip, pip

# Eager, like ``command``: these aliases share their module's name, and a lazily loaded
# submodule would shadow the alias. The modules are light (engine and stdlib only).
from cdlib.tasks.release import MarkBad, Release, Rollback, mark_bad, release, rollback
from cdlib.tasks.service import Service, service
from cdlib.tasks.users import Group, User, group, user

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
    "Group",
    "HAProxyConfig",
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
    "group",
    "haproxy_config",
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
    from cdlib.flags.tasks import (
        FlagFile,
        FlagKill,
        FlagRamp,
        FlagSet,
        flag_file,
        flag_kill,
        flag_ramp,
        flag_set,
    )
    from cdlib.tasks.aws_compute import (
        AutoScalingGroup,
        LaunchTemplate,
        SecurityGroup,
        auto_scaling_group,
        launch_template,
        security_group,
    )
    from cdlib.tasks.checks import Smoke, smoke
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
    "FlagFile": "cdlib.flags.tasks",
    "FlagKill": "cdlib.flags.tasks",
    "FlagRamp": "cdlib.flags.tasks",
    "FlagSet": "cdlib.flags.tasks",
    "flag_file": "cdlib.flags.tasks",
    "flag_kill": "cdlib.flags.tasks",
    "flag_ramp": "cdlib.flags.tasks",
    "flag_set": "cdlib.flags.tasks",
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
