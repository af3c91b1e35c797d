"""``absent``: make sure nothing is at a path (file, link or directory tree)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdlib.connections.shell import q
from cdlib.engine.task import HostContext, Plan, Task
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.tasks._upload import temp_name
from cdlib.tasks.files import PROTECTED, check_abs_path, content_diff

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


@dataclass
class Absent(Task):
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

    path: str

    templated = ("path",)
    kind = "absent"

    def validate(self) -> None:
        """Refuse dangerous paths (again after templating, in prepare)."""
        if "{{" not in self.path:
            self._refuse()

    def _refuse(self) -> None:
        check_abs_path(self, self.path)
        why = dangerous_path(self.path)
        if why:
            raise self.error(f"refusing to remove {self.path!r}: {why}")

    def prepare(self, variables: Mapping[str, Any], templar: Templar) -> Task:
        """Render the path and refuse a dangerous result."""
        t = super().prepare(variables, templar)
        assert isinstance(t, Absent)
        t._refuse()
        return t

    def describe(self) -> str:
        """``absent path``."""
        return f"absent {self.path}"

    def facts(self) -> list[Fact[object]]:
        """The path's state."""
        return [PathFact(self.path)]

    def plan(self, ctx: HostContext) -> Plan:
        """Anything there is a change."""
        st: FileState = ctx.fact(PathFact(self.path))
        if not st.exists:
            return Plan(ok_msg="absent")
        diff = content_diff(st.content, None, self.path, ctx) if st.kind == "file" else None
        return Plan(
            changes=[f"remove {st.kind} {self.path}"], affects=[self.path], data=st, diff=diff
        )

    def predict(self, plan: Plan) -> list[tuple[Fact[object], Any]] | None:
        """Nothing at the path afterwards."""
        return [(PathFact(self.path), FileState("absent"))]

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """One command: rm for files and links; rename then rm -rf for directories."""
        st: FileState = plan.data
        if st.kind == "directory":
            tmp = temp_name(self.path, "del")
            ctx.run(f"mv -T -- {q(self.path)} {q(tmp)} && rm -rf -- {q(tmp)}")
        else:
            ctx.run(f"rm -f -- {q(self.path)}")
        return None


#: Lowercase alias, as playbooks usually spell tasks.
absent = Absent
