"""Facts: what a host looks like now, as pure parsers of command output.

A fact is a shell snippet plus a parser. Parsers take text and return typed values,
so they are unit-tested from canned output; the engine batches many facts into one
remote command.
"""

from cdlib.facts.base import Fact, batch_script, split_batch
from cdlib.facts.files import FileState, PathFact

__all__ = ["Fact", "FileState", "PathFact", "batch_script", "split_batch"]
