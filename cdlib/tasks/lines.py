"""``line_in_file`` and ``block_in_file``: edit part of a file, leave the rest alone.

The new content is computed locally (pure functions below) from the file's current
content, which comes with the batched fact read for files up to 64 KiB and is
downloaded otherwise; the result is written atomically with a unified diff.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Prediction, absolute_path, option
from cdlib.facts.base import Fact
from cdlib.facts.files import CONTENT_LIMIT, FileState, PathFact
from cdlib.tasks._upload import install
from cdlib.tasks.files import ContentPlan, _Attrs, content_diff, normalize_mode, require_parent


# -- pure editing ------------------------------------------------------------------
def _split(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _insert_at(lines: list[str], insertafter: str | None, insertbefore: str | None) -> int:
    """Where a new line goes: after the last ``insertafter`` match, before the first
    ``insertbefore`` match, ``BOF``/``EOF`` literally; at the end when nothing matches."""
    if insertbefore is not None:
        if insertbefore == "BOF":
            return 0
        pat = re.compile(insertbefore)
        for i, ln in enumerate(lines):
            if pat.search(ln):
                return i
        return len(lines)
    if insertafter is not None and insertafter != "EOF":
        pat = re.compile(insertafter)
        for i in range(len(lines) - 1, -1, -1):
            if pat.search(lines[i]):
                return i + 1
    return len(lines)


def edit_line(
    text: str,
    line: str | None,
    *,
    regexp: str | None = None,
    state: str = "present",
    insertafter: str | None = None,
    insertbefore: str | None = None,
) -> str:
    """``text`` with ``line`` ensured present (or lines removed); unchanged text when right.

    present: with ``regexp`` the last matching line is replaced by ``line`` (unless
    ``line``, not matching ``regexp`` itself, is already there); without it (or with no
    match) ``line`` is inserted unless an identical line exists.
    absent: every line matching ``regexp`` (or equal to ``line``) is removed.
    """
    lines = _split(text)
    if state == "absent":
        if regexp is not None:
            pat = re.compile(regexp)
            kept = [ln for ln in lines if not pat.search(ln)]
        else:
            kept = [ln for ln in lines if ln != line]
        return text if len(kept) == len(lines) else _join(kept)
    assert line is not None
    if regexp is not None:
        pat = re.compile(regexp)
        if line in lines and not pat.search(line):
            # Replacing the last match with a line the pattern does not match would
            # move on to the next match on every run; the line being there is enough.
            return text
        hits = [i for i, ln in enumerate(lines) if pat.search(ln)]
        if hits:
            if lines[hits[-1]] == line:
                return text
            lines[hits[-1]] = line
            return _join(lines)
    if line in lines:
        return text
    lines.insert(_insert_at(lines, insertafter, insertbefore), line)
    return _join(lines)


def edit_block(
    text: str,
    block: str,
    *,
    marker: str = "# {mark} CDLIB MANAGED BLOCK",
    state: str = "present",
    insertafter: str | None = None,
    insertbefore: str | None = None,
) -> str:
    """``text`` with ``block`` between BEGIN/END marker lines (replacing an existing block).

    ``state='absent'`` (or an empty block) removes the markers and what is between them.
    A new block goes where ``insertafter``/``insertbefore`` say (default: the end).
    """
    begin, end = marker.replace("{mark}", "BEGIN"), marker.replace("{mark}", "END")
    lines = _split(text)
    b = next((i for i, ln in enumerate(lines) if ln.rstrip() == begin), None)
    e = None
    if b is not None:
        e = next((i for i in range(b + 1, len(lines)) if lines[i].rstrip() == end), None)
    body = _split(block) if block.strip("\n") else []
    new = [begin, *body, end]
    if state == "absent" or not body:
        if b is None or e is None:
            return text
        del lines[b : e + 1]
        return _join(lines)
    if b is not None and e is not None:
        if lines[b : e + 1] == new:
            return text
        lines[b : e + 1] = new
        return _join(lines)
    at = _insert_at(lines, insertafter, insertbefore)
    lines[at:at] = new
    return _join(lines)


# -- tasks -------------------------------------------------------------------------
@dataclass(kw_only=True)
class _Edit(_Attrs[ContentPlan]):
    """Shared plan/apply: read content, edit it, write it back atomically."""

    batchable = True  # apply only runs checked commands, output unread
    state: Literal["present", "absent"] = "present"
    insertafter: str | None = None
    insertbefore: str | None = None
    create: bool = False

    def _target(self) -> str:
        raise NotImplementedError

    def _edit(self, text: str) -> str:
        raise NotImplementedError

    def _validate_common(self) -> None:
        self._validate_attrs()
        if self.insertafter is not None and self.insertbefore is not None:
            raise self.error("options 'insertafter' and 'insertbefore' are mutually exclusive")
        for opt in ("insertafter", "insertbefore"):
            value = getattr(self, opt)
            if value not in (None, "EOF", "BOF"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise self.error(f"option {opt!r} is not a valid regex: {exc}") from None

    def facts(self) -> list[Fact[object]]:
        """The file's state (with content when small)."""
        return [PathFact(self._target())]

    def plan(self, ctx: HostContext) -> ContentPlan:
        """Edit the current content locally and compare."""
        path = self._target()
        st: FileState = ctx.fact(PathFact(path))
        if not st.exists:
            if self.state == "absent":
                return ContentPlan(ok_msg="file absent")
            if not self.create:
                if ctx.check and ctx.predicted:
                    # An earlier task of this run may create it; say so instead of failing.
                    return ContentPlan(
                        changes=[f"edit {path} (missing now; expected from an earlier task)"],
                        affects=[path],
                    )
                raise TaskFailed(f"{path} does not exist; set create=True to create it")
            require_parent(ctx, path, st)
            self._require_accounts(ctx, None)
            new = self._edit("").encode()
            return ContentPlan(
                changes=[f"create {path}"],
                affects=[path],
                write=new,
                diff=content_diff(None, new, path, ctx),
            )
        if st.kind != "file":
            raise TaskFailed(f"{path} is a {st.kind}, not a file")
        old = st.content if st.content is not None else ctx.conn.get(path)
        try:
            text = old.decode("utf-8")
        except UnicodeDecodeError:
            raise TaskFailed(f"{path} is not UTF-8 text") from None
        new_text = self._edit(text)
        changes: list[str] = []
        data = None
        diff = None
        if new_text != text:
            data = new_text.encode()
            changes.append("content")
            diff = content_diff(old, data, path, ctx)
        changes += self._attr_changes(st)
        if changes:
            self._require_accounts(ctx, st)
        return ContentPlan(
            changes=changes, affects=[path], write=data, diff=diff, ok_msg="in place", before=st
        )

    def predict(self, plan: ContentPlan) -> list[Prediction] | None:
        """The file as the edit leaves it (for later tasks in check mode)."""
        before = plan.before or FileState("absent")
        data = plan.write if plan.write is not None else before.content
        if data is None:
            return None  # edit of a file an earlier task would create: unknown content
        after = FileState(
            "file",
            mode=normalize_mode(self.mode) or before.mode or "0644",
            owner=self.owner or before.owner,
            group=self.group or before.group,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content=data if len(data) <= CONTENT_LIMIT else None,
        )
        return [(PathFact(self._target()), after)]

    def apply(self, ctx: HostContext, plan: ContentPlan) -> str | None:
        """Atomic write (keeping owner and mode unless given), or just the attributes."""
        from cdlib.connections.shell import attrs_command

        path = self._target()
        mode = normalize_mode(self.mode)
        if plan.write is None:
            ctx.run(attrs_command(path, mode, self.owner, self.group))
            return None
        install(ctx, path, plan.write, mode=mode, owner=self.owner, group=self.group)
        return None


@dataclass
class LineInFile(_Edit):
    """Ensure one line is in a file (or lines matching a pattern are not).

    Options: ``path``; ``line``; ``regexp`` (Python regex: the last matching line is
    replaced by ``line``; with ``state='absent'`` every matching line is removed);
    ``state`` (``present``/``absent``); ``insertafter`` (regex or ``EOF``: a new line goes
    after the last match) / ``insertbefore`` (regex or ``BOF``: before the first match);
    ``create`` (create the file when missing, else that is a failure); ``mode``,
    ``owner``, ``group``. The file keeps its owner and mode unless given. Check mode
    reports ``content``/``create``; ``--diff`` shows the unified diff.

    Example:
        ```python
        play.task(tasks.line_in_file(
            "/etc/app.conf", line="workers = 4", regexp="^workers ="
        ))
        ```
    """

    path: str = field(metadata=option(templated=True, check=absolute_path))
    line: str | None = field(default=None, metadata=option(templated=True))
    regexp: str | None = field(default=None, metadata=option(templated=True))

    kind = "line_in_file"

    def validate(self) -> None:
        """``line`` for present; ``line`` or ``regexp`` for absent; valid regexes."""
        self._validate_common()
        if self.state == "present" and self.line is None:
            raise self.error("option 'line' is required with state='present'")
        if self.state == "absent" and self.line is None and self.regexp is None:
            raise self.error("state='absent' needs 'line' or 'regexp'")
        if self.line is not None and "\n" in self.line:
            raise self.error("option 'line' must be one line; use block_in_file for several")
        if self.regexp is not None:
            try:
                re.compile(self.regexp)
            except re.error as exc:
                raise self.error(f"option 'regexp' is not a valid regex: {exc}") from None

    def describe(self) -> str:
        """``line_in_file path``."""
        return f"line_in_file {self.path}"

    def _target(self) -> str:
        return self.path

    def _edit(self, text: str) -> str:
        return edit_line(
            text,
            self.line,
            regexp=self.regexp,
            state=self.state,
            insertafter=self.insertafter,
            insertbefore=self.insertbefore,
        )


@dataclass
class BlockInFile(_Edit):
    """Ensure a block of lines sits between marker lines in a file.

    Options: ``path``; ``block`` (text; empty removes the block); ``marker`` (default
    ``# {mark} CDLIB MANAGED BLOCK``; ``{mark}`` becomes ``BEGIN``/``END``, and a
    different marker per block lets one file hold several); ``state``;
    ``insertafter``/``insertbefore`` (where a new block goes); ``create``; ``mode``,
    ``owner``, ``group``. An existing block is replaced in place. Check mode reports
    ``content``/``create``; ``--diff`` shows the unified diff.

    Example:
        ```python
        play.task(tasks.block_in_file(
            "/etc/hosts", block="10.0.0.5 db\\n10.0.0.6 cache", notify="reload"
        ))
        ```
    """

    path: str = field(metadata=option(templated=True, check=absolute_path))
    block: str = field(default="", metadata=option(templated=True))
    marker: str = field(default="# {mark} CDLIB MANAGED BLOCK", metadata=option(templated=True))

    kind = "block_in_file"

    def validate(self) -> None:
        """Marker must hold ``{mark}``."""
        self._validate_common()
        if not self.pending("marker") and "{mark}" not in self.marker:
            raise self.error("option 'marker' must contain '{mark}'")

    def describe(self) -> str:
        """``block_in_file path``."""
        return f"block_in_file {self.path}"

    def _target(self) -> str:
        return self.path

    def _edit(self, text: str) -> str:
        return edit_block(
            text,
            self.block,
            marker=self.marker,
            state=self.state,
            insertafter=self.insertafter,
            insertbefore=self.insertbefore,
        )


#: Lowercase aliases, as playbooks usually spell tasks.
line_in_file = LineInFile
block_in_file = BlockInFile
