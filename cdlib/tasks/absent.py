"""``absent``: make sure nothing is at a path (file, link or directory tree)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from cdlib.connections.shell import q
from cdlib.engine.task import HostContext, Plan, Prediction, Task, option
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.tasks._upload import temp_name
from cdlib.tasks.files import PROTECTED, content_diff

#: System directories below the top level that are never removed as a whole.
_PROTECTED_DEEP = {
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local",
    "/usr/share",
    "/var/lib",
    "/var/log",
    "/etc/ssh",
    "/etc/sudoers.d",
}


def dangerous_path(path: str) -> str | None:
    """Why removing ``path`` is refused, or None when it may be removed.

    Refused: relative or unnormalized paths (``..``, ``//``, trailing ``/``), ``/``,
    every top-level directory and a list of system directories.
    """
    if not path.startswith("/"):
        return "not an absolute path"
    if posixpath.normpath(path) != path or path.startswith("//"):
        return "not a normalized path (no '..', '.', '//' or trailing '/')"
    if path == "/" or path.count("/") == 1:
        return "a top-level directory"
    if path in PROTECTED or path in _PROTECTED_DEEP:
        return "a system directory"
    return None


def _removable(name: str, path: str) -> str | None:
    if not path.startswith("/"):
        return f"option {name!r} must be an absolute path, got {path!r}"
    why = dangerous_path(path)
    return f"refusing to remove {path!r}: {why}" if why else None


@dataclass(kw_only=True)
class AbsentPlan(Plan):
    """What is at the path now (removed by ``apply``)."""

    found: FileState


@dataclass
class Absent(Task[AbsentPlan]):
    """Remove whatever is at ``path``: a file, a symlink (not its target) or a directory tree.

    Options: ``path`` (absolute). ``/``, top-level directories, system directories and
    unnormalized paths are refused with an error before any host is touched. A directory
    is first renamed to a temporary name beside it, then deleted, so ``path`` vanishes
    at once and a failed deletion never leaves a half-removed tree there. Check mode
    reports ``remove <kind> <path>``; ``--diff`` shows a small file's content as removed.

    Example:
        ```python
        play.task(tasks.absent("/srv/app/releases/0.9.0"))
        ```
    """

    path: str = field(metadata=option(templated=True, check=_removable))

    kind = "absent"

    batchable = True  # apply only runs checked commands, output unread

    def describe(self) -> str:
        """``absent path``."""
        return f"absent {self.path}"

    def facts(self) -> list[Fact[object]]:
        """The path's state."""
        return [PathFact(self.path)]

    def plan(self, ctx: HostContext) -> AbsentPlan:
        """Anything there is a change."""
        st: FileState = ctx.fact(PathFact(self.path))
        if not st.exists:
            return AbsentPlan(ok_msg="absent", found=st)
        diff = content_diff(st.content, None, self.path, ctx) if st.kind == "file" else None
        return AbsentPlan(
            changes=[f"remove {st.kind} {self.path}"], affects=[self.path], found=st, diff=diff
        )

    def predict(self, plan: AbsentPlan) -> list[Prediction] | None:
        """Nothing at the path afterwards."""
        return [(PathFact(self.path), FileState("absent"))]

    def apply(self, ctx: HostContext, plan: AbsentPlan) -> str | None:
        """One command: rm for files and links; rename then rm -rf for directories."""
        st = plan.found
        if st.kind == "directory":
            tmp = temp_name(self.path, "del")
            ctx.run(f"mv -T -- {q(self.path)} {q(tmp)} && rm -rf -- {q(tmp)}")
        else:
            ctx.run(f"rm -f -- {q(self.path)}")
        return None


#: Lowercase alias, as playbooks usually spell tasks.
absent = Absent
