"""Tasks for playbooks: ``from cdlib import tasks`` then ``tasks.file(...)``."""

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
from cdlib.tasks.traffic import (
    ElbV2LoadBalancer,
    HAProxyConfig,
    elbv2_load_balancer,
    haproxy_config,
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
