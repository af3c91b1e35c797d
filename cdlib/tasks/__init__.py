"""Tasks for playbooks: ``from cdlib import tasks`` then ``tasks.file(...)``."""

from typing import TYPE_CHECKING, Any

from cdlib.tasks.command import Command, command
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

__all__ = [
    "Command",
    "Directory",
    "ElbV2LoadBalancer",
    "File",
    "FlagFile",
    "FlagKill",
    "FlagRamp",
    "FlagSet",
    "HAProxyConfig",
    "Smoke",
    "Symlink",
    "Template",
    "command",
    "directory",
    "elbv2_load_balancer",
    "file",
    "flag_file",
    "flag_kill",
    "flag_ramp",
    "flag_set",
    "haproxy_config",
    "smoke",
    "symlink",
    "template",
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
    from cdlib.tasks.checks import Smoke, smoke
    from cdlib.tasks.traffic import (
        ElbV2LoadBalancer,
        HAProxyConfig,
        elbv2_load_balancer,
        haproxy_config,
    )

#: Tasks whose modules pull in more (flags, checks, routers): loaded on first use.
_LAZY = {
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
