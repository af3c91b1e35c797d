"""File tasks: ``directory``, ``file``, ``template``, ``symlink``.

Each reads one :class:`~cdlib.facts.files.PathFact`, compares it with the desired
state and, when they differ, changes the host with one atomic command.
"""

from __future__ import annotations

import difflib
import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from secrets import token_hex
from typing import Literal, Self, TypeVar

from cdlib.connections.shell import atomic_symlink_command, atomic_write_command, attrs_command, q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.secrets import MASK, Redactor
from cdlib.engine.task import HostContext, Plan, Prediction, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import CONTENT_LIMIT, FileState, PathFact
from cdlib.facts.users import GroupFact, UserFact
from cdlib.tasks._local import local_path

PROTECTED = {
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/proc",
    "/root",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
}


def normalize_mode(mode: str | int | None) -> str | None:
    """``0o644``, ``"644"`` or ``"0644"`` to ``"0644"``; ``None`` stays ``None``."""
    if mode is None:
        return None
    if isinstance(mode, int):
        return format(mode, "04o")
    text = mode.strip()
    if text.startswith("0o"):
        text = text[2:]
    return text.zfill(4)


def decimal_mode_problem(mode: object) -> str | None:
    """Why an int ``mode`` was surely meant as octal but written in decimal, or ``None``.

    ``mode=755`` is the number 755, mode ``0o1363``: an int whose decimal digits are
    all octal digits and that is above ``0o777`` (``755``, ``644``, ``2775``) is
    refused. Written in octal (``0o755``) or as a string (``"0755"``) it is accepted.
    """
    if not isinstance(mode, int) or isinstance(mode, bool):
        return None
    text = str(mode)
    if mode <= 0o777 or not all(c in "01234567" for c in text):
        return None
    return (
        f"option 'mode' is the decimal number {text} (mode {mode:#o}); "
        f"write it in octal, mode=0o{text}, or as a string, mode='0{text}'"
    )


def _mode_ok(mode: str | None) -> bool:
    if mode is None:
        return True
    return len(mode) == 4 and all(c in "01234567" for c in mode)


#: The plan type of a file-like task.
_P = TypeVar("_P", bound=Plan, covariant=True)


@dataclass(kw_only=True)
class _Attrs(Task[_P]):
    """Mode and ownership options shared by file-like tasks."""

    mode: str | int | None = None
    owner: str | None = field(default=None, metadata=option(templated=True))
    group: str | None = field(default=None, metadata=option(templated=True))

    def _validate_attrs(self) -> None:
        problem = decimal_mode_problem(self.mode)
        if problem is not None:
            raise self.error(problem)
        self.mode = normalize_mode(self.mode)
        if not _mode_ok(self.mode):
            raise self.error(f"option 'mode' must be an octal mode like '0644', got {self.mode!r}")

    def _require_accounts(self, ctx: HostContext, st: FileState | None) -> None:
        """Fail, as ``chown`` would, when the owner or group to set does not exist.

        Read only when a change sets them (a no-change run pays nothing); in check mode a
        ``user``/``group`` task earlier in the run counts, through its prediction.
        """
        found = st if st is not None and st.exists else None
        sets_owner = self.owner and (found is None or found.owner != self.owner)
        if sets_owner and not ctx.fact(UserFact(str(self.owner))).exists:
            raise TaskFailed(
                f"owner {self.owner!r} does not exist on the host (and no earlier task creates it)"
            )
        sets_group = self.group and (found is None or found.group != self.group)
        if sets_group and not ctx.fact(GroupFact(str(self.group))).exists:
            raise TaskFailed(
                f"group {self.group!r} does not exist on the host (and no earlier task creates it)"
            )

    def _attr_changes(self, st: FileState) -> list[str]:
        out = []
        if self.mode and st.mode != self.mode:
            out.append(f"mode {st.mode} -> {self.mode}")
        if self.owner and st.owner != self.owner:
            out.append(f"owner {st.owner} -> {self.owner}")
        if self.group and st.group != self.group:
            out.append(f"group {st.group} -> {self.group}")
        return out


def require_parent(ctx: HostContext, path: str, st: FileState) -> None:
    """Fail (as the real write would) when ``path`` is absent and its directory is too.

    The path's fact says which directory above it exists; when that is not its parent,
    the parent is looked up once more: in check mode an earlier task may be predicted to
    create it, in a real run an earlier task may just have. A symlink there counts as the
    directory it points to.
    """
    if st.exists or st.base is None:
        return
    parent = posixpath.dirname(path) or "/"
    if st.base == parent:
        return
    found: FileState = ctx.fact(PathFact(parent), expected=True)
    if found.kind in ("directory", "link"):
        return
    if found.exists:
        raise TaskFailed(f"cannot write {path}: {parent} is a {found.kind}, not a directory")
    raise TaskFailed(
        f"cannot write {path}: directory {parent} does not exist (nothing earlier in the "
        f"play creates it; add tasks.directory({parent!r}) before this task)"
    )


def check_abs_path(task: Task[Plan], path: str, option: str = "path") -> None:
    """Raise a located error unless ``path`` is absolute."""
    if not path.startswith("/"):
        raise task.error(f"option {option!r} must be an absolute path, got {path!r}")


@dataclass(kw_only=True)
class DirectoryPlan(Plan):
    """The directory as planning found it."""

    before: FileState | None = None
    #: Directories above the path that ``mkdir -p`` creates too.
    parents: list[str] = field(default_factory=list)


@dataclass
class Directory(_Attrs[DirectoryPlan]):
    """Ensure a directory exists (with parents) or is absent.

    Options: ``path``; ``state`` (``present`` or ``absent``); ``mode``, ``owner``,
    ``group`` of the directory itself. Check mode reports the directory it would
    create or remove and the attributes it would change.

    Example:
        ```python
        play.task(tasks.directory("/srv/app/releases/{{ version }}", mode="0755"))
        ```
    """

    path: str = field(metadata=option(templated=True, check=absolute_path))
    state: Literal["present", "absent"] = "present"

    kind = "directory"

    batchable = True  # apply only runs checked commands, output unread

    def validate(self) -> None:
        """Valid mode (``path`` is checked by its option metadata)."""
        self._validate_attrs()

    def describe(self) -> str:
        """``directory /path``."""
        return f"directory {self.path}"

    def facts(self) -> list[Fact[object]]:
        """The path's state."""
        return [PathFact(self.path)]

    def plan(self, ctx: HostContext) -> DirectoryPlan:
        """Compare with what is there."""
        st: FileState = ctx.fact(PathFact(self.path))
        if self.state == "absent":
            if not st.exists:
                return DirectoryPlan(ok_msg="absent")
            if self.path.rstrip("/") in PROTECTED:
                raise TaskFailed(f"refusing to remove {self.path}")
            return DirectoryPlan(changes=[f"remove {self.path}"], affects=[self.path])
        if st.exists and st.kind != "directory":
            raise TaskFailed(f"{self.path} exists and is a {st.kind}, not a directory")
        if not st.exists:
            self._require_accounts(ctx, None)
            parents = _created_parents(self.path, st.base)
            # mkdir -p makes the path and its missing parents, nothing under them: facts
            # about other paths stay valid (shallow).
            return DirectoryPlan(
                changes=[f"create {self.path}"],
                affects=[self.path, *parents],
                parents=parents,
                shallow=True,
            )
        changes = self._attr_changes(st)
        if changes:
            self._require_accounts(ctx, st)
        return DirectoryPlan(
            changes=changes, affects=[self.path], ok_msg="exists", before=st, shallow=True
        )

    def predict(self, plan: DirectoryPlan) -> list[Prediction] | None:
        """The directory as the plan leaves it."""
        if self.state == "absent":
            return [(PathFact(self.path), FileState("absent"))]
        before = plan.before or FileState("absent")
        after = FileState(
            "directory",
            mode=normalize_mode(self.mode) or before.mode,
            owner=self.owner or before.owner,
            group=self.group or before.group,
        )
        made: list[Prediction] = [(PathFact(p), FileState("directory")) for p in plan.parents]
        return [*made, (PathFact(self.path), after)]

    def apply(self, ctx: HostContext, plan: DirectoryPlan) -> str | None:
        """mkdir -p and chmod/chown in one command, or rm -rf."""
        if self.state == "absent":
            # Renamed aside first, so the path vanishes at once, never half-deleted.
            tmp = posixpath.join(
                posixpath.dirname(self.path.rstrip("/")) or "/",
                "." + posixpath.basename(self.path.rstrip("/")) + ".cdlib-del-" + token_hex(6),
            )
            ctx.run(f"mv -T -- {q(self.path)} {q(tmp)} && rm -rf -- {q(tmp)}")
            return None
        cmd = f"mkdir -p -- {q(self.path)}"
        attrs = attrs_command(self.path, self.mode, self.owner, self.group)  # type: ignore[arg-type]
        ctx.run(cmd + (" && " + attrs if attrs else ""))
        return None


def _created_parents(path: str, base: str | None) -> list[str]:
    """The directories between ``base`` (which exists) and ``path`` that ``mkdir -p`` makes."""
    out: list[str] = []
    if base is None:
        return out
    d = posixpath.dirname(path.rstrip("/")) or "/"
    while d not in (base, "/") and d.startswith(base.rstrip("/") + "/"):
        out.append(d)
        d = posixpath.dirname(d) or "/"
    return out


def content_diff(old: bytes | None, new: bytes | None, path: str, ctx: HostContext) -> str | None:
    """Unified diff of text content with secrets masked, or a note for binary content."""
    if not ctx.diff:
        return None

    def text(b: bytes | None) -> list[str] | None:
        if b is None:
            return []
        try:
            return b.decode("utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            return None

    a, b = text(old), text(new)
    if a is None or b is None:
        return f"binary content of {path} differs\n"
    b = [ctx.redact(line) for line in b]
    a = mask_like(a, b, ctx.redact)
    lines = difflib.unified_diff(
        a,
        b,
        fromfile=f"{path} (before)" if old is not None else "/dev/null",
        tofile=f"{path} (after)" if new is not None else "/dev/null",
    )
    out = "".join(
        ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines
    )
    return out or None


def mask_like(old: list[str], new_masked: list[str], redact: Redactor) -> list[str]:
    """Mask in ``old`` the places where ``new_masked`` holds a secret.

    The old file may hold a *previous* secret value that this run does not know
    (a rotated password). A new line such as ``password = ********`` becomes the
    pattern ``password = (.*)``; an old line matching it has that part masked too.
    """
    patterns = []
    for line in new_masked:
        if MASK in line:
            parts = [re.escape(p) for p in line.rstrip("\n").split(MASK)]
            patterns.append(re.compile("^" + "(.+?)".join(parts) + "$"))
    if not patterns:
        return [redact(line) for line in old]
    out = []
    for line in old:
        body = line.rstrip("\n")
        for pat in patterns:
            m = pat.match(body)
            if m:
                pieces, last = [], 0
                for g in range(1, (m.lastindex or 0) + 1):
                    pieces.append(body[last : m.start(g)])
                    # A value other than the current secret shows as changed.
                    known = redact(m.group(g)) == MASK
                    pieces.append(MASK if known else MASK + "(previous)")
                    last = m.end(g)
                pieces.append(body[last:])
                body = "".join(pieces)
                break
        out.append(redact(body) + line[len(line.rstrip("\n")) :])
    return out


@dataclass(kw_only=True)
class ContentPlan(Plan):
    """A file-content plan: the bytes to write (``None``: content stays) and the file found."""

    write: bytes | None = None
    before: FileState | None = None


@dataclass(kw_only=True)
class _Content(_Attrs[ContentPlan]):
    """Shared plan/apply of tasks that manage a file's content (file, template)."""

    batchable = True  # apply only runs checked commands, output unread
    state: Literal["present", "absent"] = "present"
    _data: bytes | None = field(default=None, init=False, repr=False)

    def target_path(self) -> str:
        """The file on the host."""
        raise NotImplementedError

    def desired_bytes(self) -> bytes | None:
        """Content to write, or ``None`` to leave content alone."""
        return self._data

    def facts(self) -> list[Fact[object]]:
        """The path's state."""
        return [PathFact(self.target_path())]

    def plan(self, ctx: HostContext) -> ContentPlan:
        """Compare checksum and attributes."""
        path = self.target_path()
        st: FileState = ctx.fact(PathFact(path))
        if self.state == "absent":
            if not st.exists:
                return ContentPlan(ok_msg="absent")
            if st.kind == "directory":
                raise TaskFailed(f"{path} is a directory; use directory(state='absent')")
            return ContentPlan(
                changes=[f"remove {path}"],
                affects=[path],
                diff=content_diff(st.content, None, path, ctx),
            )
        if st.exists and st.kind != "file":
            raise TaskFailed(f"{path} exists and is a {st.kind}, not a file")
        data = self.desired_bytes()
        if not st.exists:
            require_parent(ctx, path, st)
            self._require_accounts(ctx, None)
            data = data if data is not None else b""
            return ContentPlan(
                changes=[f"create {path}"],
                affects=[path],
                write=data,
                diff=content_diff(None, data, path, ctx),
            )
        changes: list[str] = []
        diff = None
        write: bytes | None = None
        if data is not None and hashlib.sha256(data).hexdigest() != st.sha256:
            changes.append("content")
            write = data
            if st.content is not None:
                diff = content_diff(st.content, data, path, ctx)
            elif ctx.diff:
                diff = f"content of {path} differs (too large to diff)\n"
        changes += self._attr_changes(st)
        if changes:
            self._require_accounts(ctx, st)
        return ContentPlan(
            changes=changes, affects=[path], write=write, diff=diff, ok_msg="in place", before=st
        )

    def predict(self, plan: ContentPlan) -> list[Prediction] | None:
        """The file as the plan leaves it."""
        path = self.target_path()
        if self.state == "absent":
            return [(PathFact(path), FileState("absent"))]
        before = plan.before or FileState("absent")
        if plan.write is not None:
            data = plan.write
            sha: str | None = hashlib.sha256(data).hexdigest()
            content: bytes | None = data if len(data) <= CONTENT_LIMIT else None
            size: int | None = len(data)
        else:
            sha, content, size = before.sha256, before.content, before.size
        after = FileState(
            "file",
            mode=normalize_mode(self.mode) or before.mode or "0644",
            owner=self.owner or before.owner,
            group=self.group or before.group,
            size=size,
            sha256=sha,
            content=content,
        )
        return [(PathFact(path), after)]

    def apply(self, ctx: HostContext, plan: ContentPlan) -> str | None:
        """One command: atomic write with attributes, attribute fix, or removal."""
        path = self.target_path()
        mode = normalize_mode(self.mode)
        if self.state == "absent":
            ctx.run(f"rm -f -- {q(path)}")
        elif plan.write is not None:
            size = len(plan.write)
            ctx.run(
                atomic_write_command(path, mode, self.owner, self.group, size=size),
                stdin=plan.write,
                exact_stdin=True,
            )
        else:
            ctx.run(attrs_command(path, mode, self.owner, self.group))
        return None


@dataclass
class File(_Content):
    """Ensure a file has the given content and attributes, or is absent.

    Options: ``path``; ``content`` (text or bytes; ``None`` leaves content alone and
    only creates an empty file when missing); ``src`` (a local file, relative to the
    playbook, to copy instead of ``content``); ``state`` (``present`` or ``absent``);
    ``mode``, ``owner``, ``group``. The write is atomic (temp file in the same
    directory, then rename). Check mode reports content and attribute changes; with
    ``--diff`` a unified diff with secret values masked.

    Example:
        ```python
        play.task(tasks.file("/srv/app/VERSION", content="{{ version }}\\n", mode="0644"))
        ```
    """

    path: str = field(metadata=option(templated=True, check=absolute_path))
    content: str | bytes | None = field(default=None, metadata=option(templated=True))
    src: str | None = field(default=None, metadata=option(templated=True))

    kind = "file"

    def validate(self) -> None:
        """One content source at most; valid mode."""
        self._validate_attrs()
        if self.content is not None and self.src is not None:
            raise self.error("options 'content' and 'src' are mutually exclusive")

    def target_path(self) -> str:
        """``path``."""
        return self.path

    def describe(self) -> str:
        """``file /path``."""
        return f"file {self.path}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render options and read ``src`` now, so a missing file fails before any host."""
        t = super().prepare(variables, templar)
        if t.src is not None:
            src = local_path(templar, t.src)
            try:
                t._data = src.read_bytes()
            except OSError as exc:
                raise self.error(f"cannot read src {str(src)!r}: {exc.strerror}") from None
        elif t.content is not None:
            t._data = t.content.encode() if isinstance(t.content, str) else t.content
        return t


@dataclass
class Template(_Content):
    """Render a jinja2 template with the host's variables and write it like ``file``.

    Options: ``src`` (template path, relative to the playbook's directory or its
    ``templates/``); ``dest``; ``vars`` (extra variables for this template);
    ``mode``, ``owner``, ``group``. Rendering uses StrictUndefined and happens for
    every host before any host is touched, so an undefined variable is reported with
    the template's name and line. Check mode and ``--diff`` show the content change,
    with secret values masked.

    Example:
        ```python
        play.task(tasks.template("app.conf.j2", "/etc/app.conf", mode="0640", notify="restart"))
        ```
    """

    src: str = field(metadata=option(templated=True))
    dest: str = field(metadata=option(templated=True, check=absolute_path))
    vars: Mapping[str, object] | None = None

    kind = "template"

    def validate(self) -> None:
        """Valid mode (``dest`` is checked by its option metadata)."""
        self._validate_attrs()

    def target_path(self) -> str:
        """``dest``."""
        return self.dest

    def describe(self) -> str:
        """``template src -> dest``."""
        return f"template {self.src} -> {self.dest}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render the template for this host now (local work, before any host)."""
        t = super().prepare(variables, templar)
        tvars = dict(variables)
        if t.vars:
            tvars.update(t.vars)
        t._data = templar.render_file(t.src, tvars).encode()
        return t


@dataclass
class Symlink(Task[Plan]):
    """Ensure ``path`` is a symlink to ``target``, switched atomically.

    Options: ``path``; ``target``; ``force`` (replace a regular file or empty
    directory at ``path``). The link is created under a temporary name and renamed
    over ``path``, so readers never find it missing. Check mode reports the old and
    new target.

    Example:
        ```python
        play.task(tasks.symlink("/srv/app/current", "/srv/app/releases/{{ version }}"))
        ```
    """

    path: str = field(metadata=option(templated=True, check=absolute_path))
    target: str = field(metadata=option(templated=True))
    force: bool = False

    kind = "symlink"

    batchable = True  # apply only runs checked commands, output unread

    def describe(self) -> str:
        """``symlink path -> target``."""
        return f"symlink {self.path} -> {self.target}"

    def facts(self) -> list[Fact[object]]:
        """The link's state."""
        return [PathFact(self.path)]

    def plan(self, ctx: HostContext) -> Plan:
        """Compare the link target."""
        st: FileState = ctx.fact(PathFact(self.path))
        if st.kind == "link":
            if st.target == self.target:
                return Plan(ok_msg=f"-> {self.target}")
            return Plan(
                changes=[f"target {st.target} -> {self.target}"],
                affects=[self.path],
                diff=f"-{self.path} -> {st.target}\n+{self.path} -> {self.target}\n"
                if ctx.diff
                else None,
            )
        if st.exists and not self.force:
            raise TaskFailed(f"{self.path} exists and is a {st.kind}; set force=True to replace it")
        require_parent(ctx, self.path, st)
        return Plan(changes=[f"link -> {self.target}"], affects=[self.path])

    def predict(self, plan: Plan) -> list[Prediction] | None:
        """The link as the plan leaves it."""
        return [(PathFact(self.path), FileState("link", target=self.target))]

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Atomic rename of a fresh link over the path."""
        st: FileState = ctx.fact(PathFact(self.path))
        pre = ""
        if st.kind == "directory" and self.force:
            pre = f"rmdir -- {q(self.path)} && "
        ctx.run(pre + atomic_symlink_command(self.path, self.target))
        return None


#: Lowercase aliases, as playbooks usually spell tasks.
directory = Directory
file = File
template = Template
symlink = Symlink
