"""Tasks for playbooks: ``from cdlib import tasks`` then ``tasks.file(...)``."""

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

__all__ = [
    "Command",
    "Directory",
    "File",
    "Smoke",
    "Symlink",
    "Template",
    "command",
    "directory",
    "file",
    "smoke",
    "symlink",
    "template",
]

# Flag tasks live with the flags package; imported last because it uses tasks._shell.
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

__all__ += [
    "FlagFile",
    "FlagKill",
    "FlagRamp",
    "FlagSet",
    "flag_file",
    "flag_kill",
    "flag_ramp",
    "flag_set",
]
