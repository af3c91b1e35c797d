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
