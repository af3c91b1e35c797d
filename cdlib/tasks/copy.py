"""``copy`` (local file to host) and ``fetch`` (host file to local), skipped by checksum.

Nothing is transferred when the sha256 on the other side already matches: the
host's checksum comes from the batched :class:`~cdlib.facts.files.PathFact` read.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cdlib.atomicfile import write_atomic
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Prediction, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import CONTENT_LIMIT, FileState, PathFact
from cdlib.tasks._local import file_sha256, local_path
from cdlib.tasks._upload import install
from cdlib.tasks.files import _Attrs, content_diff, normalize_mode, require_parent

#: Local files up to this size are read for a diff (content above it is reported as differing).
_DIFF_LIMIT = 64 * 1024


@dataclass(kw_only=True)
class CopyPlan(Plan):
    """A copy plan: whether the content is uploaded, and the file found."""

    upload: bool = False
    before: FileState | None = None


@dataclass
class Copy(_Attrs[CopyPlan]):
    """Copy a local file to the host when its checksum differs.

    Options: ``src`` (local file, relative to the playbook's directory); ``dest``
    (absolute path on the host; a trailing ``/`` means ``dest/<basename of src>``);
    ``mode``, ``owner``, ``group``. The host's sha256 comes from the batched fact read,
    so an unchanged file costs no transfer at all. Small files go in one command;
    large ones over SFTP to a temp name beside ``dest``, then one rename. Check mode
    reports ``create``/``content``/attribute changes; ``--diff`` shows a unified diff
    for text files up to 64 KiB.

    Example:
        ```python
        play.task(tasks.copy("files/app.service", "/etc/systemd/system/app.service", mode="0644"))
        ```
    """

    src: str = field(metadata=option(templated=True))
    dest: str = field(metadata=option(templated=True, check=absolute_path))

    kind = "copy"

    batchable = True  # apply only runs checked commands, output unread

    _local: Path | None = field(default=None, init=False, repr=False)
    _sha: str = field(default="", init=False, repr=False)

    def validate(self) -> None:
        """Valid mode (``dest`` is checked by its option metadata)."""
        self._validate_attrs()

    def describe(self) -> str:
        """``copy src -> dest``."""
        return f"copy {self.src} -> {self.dest}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render options, find ``src`` and checksum it (before any host is touched)."""
        t = super().prepare(variables, templar)
        src = local_path(templar, t.src)
        if not src.is_file():
            raise t.error(f"src {str(src)!r} is not a readable file")
        try:
            sha, _ = file_sha256(src)
        except OSError as exc:
            raise t.error(f"cannot read src {str(src)!r}: {exc.strerror}") from None
        if t.dest.endswith("/"):
            t.dest += src.name
        t._local = src
        t._sha = sha
        return t

    def facts(self) -> list[Fact[object]]:
        """The destination's state."""
        return [PathFact(self.dest)]

    def plan(self, ctx: HostContext) -> CopyPlan:
        """Compare sha256 and attributes."""
        assert self._local is not None
        st: FileState = ctx.fact(PathFact(self.dest))
        if st.exists and st.kind != "file":
            raise TaskFailed(
                f"{self.dest} exists and is a {st.kind}; give the full file path as dest"
            )
        require_parent(ctx, self.dest, st)
        changes: list[str] = []
        diff = None
        if not st.exists or st.sha256 != self._sha:
            changes.append("create" if not st.exists else "content")
            diff = _diff_local(st, self._local, self.dest, ctx)
        if st.exists:
            changes += self._attr_changes(st)
        if changes:
            self._require_accounts(ctx, st)
        return CopyPlan(
            changes=changes,
            affects=[self.dest],
            upload=bool(changes and changes[0] in ("create", "content")),
            diff=diff,
            ok_msg="same checksum",
            before=st,
        )

    def predict(self, plan: CopyPlan) -> list[Prediction] | None:
        """The file as the copy leaves it (for later tasks in check mode)."""
        assert self._local is not None
        before = plan.before or FileState("absent")
        size = self._local.stat().st_size
        after = FileState(
            "file",
            mode=normalize_mode(self.mode) or before.mode or "0644",
            owner=self.owner or before.owner,
            group=self.group or before.group,
            size=size,
            sha256=self._sha,
            content=self._local.read_bytes() if size <= CONTENT_LIMIT else None,
        )
        return [(PathFact(self.dest), after)]

    def apply(self, ctx: HostContext, plan: CopyPlan) -> str | None:
        """Upload (when content differs) and set attributes."""
        from cdlib.connections.shell import attrs_command

        assert self._local is not None
        mode = normalize_mode(self.mode)
        if plan.upload:
            install(ctx, self.dest, self._local, mode=mode, owner=self.owner, group=self.group)
        else:
            ctx.run(attrs_command(self.dest, mode, self.owner, self.group))
        return None


def _diff_local(st: FileState, local: Path, path: str, ctx: HostContext) -> str | None:
    if not ctx.diff:
        return None
    if local.stat().st_size > _DIFF_LIMIT or (st.exists and st.content is None):
        return f"content of {path} differs (too large to diff)\n"
    return content_diff(st.content if st.exists else None, local.read_bytes(), path, ctx)


@dataclass(kw_only=True)
class FetchPlan(Plan):
    """A fetch plan: the host file's state (with its content when small), if fetched."""

    fetched: FileState | None = None


@dataclass
class Fetch(Task[FetchPlan]):
    """Fetch a file from the host to a local path when the checksums differ.

    Options: ``src`` (absolute path on the host); ``dest`` (local path, relative to the
    playbook's directory; use ``{{ inventory_hostname }}`` in it when fetching from
    several hosts, or a trailing ``/`` for ``dest/<host>/<src path>``); ``fail_on_missing``
    (default true; false reports ok when ``src`` does not exist). A host name, a ``..`` in
    ``src`` or a variable in ``dest`` never puts the local file outside ``dest``: such a
    path is refused before the run (the host path is normalised). Files up to 64 KiB come
    with the batched fact read, so they cost no extra round trip. The local write is
    atomic. Check mode reports the local file it would create or update and writes
    nothing; ``--diff`` shows the content change.

    Example:
        ```python
        play.task(tasks.fetch("/var/log/app/last.log", "logs/{{ inventory_hostname }}.log"))
        ```
    """

    src: str = field(metadata=option(templated=True, check=absolute_path))
    dest: str = field(metadata=option(templated=True))
    fail_on_missing: bool = True

    kind = "fetch"

    _local: Path | None = field(default=None, init=False, repr=False)

    def describe(self) -> str:
        """``fetch src -> dest``."""
        return f"fetch {self.src} -> {self.dest}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render options and resolve the local destination."""
        t = super().prepare(variables, templar)
        host = str(variables.get("inventory_hostname", "localhost"))
        if t.dest.endswith("/"):
            # dest/<host>/<src>: the host name is one directory, and the host's path is
            # normalised as the host sees it, so neither can climb out of dest.
            if host in ("", ".", "..") or "/" in host or "\0" in host:
                raise t.error(f"host name {host!r} cannot be a directory under dest {t.dest!r}")
            base = local_path(templar, t.dest)
            local = base / host / posixpath.normpath(t.src).lstrip("/")
        else:
            # Only the templated part of dest comes from variables: it adds no ``..`` and
            # stays inside the literal directory written before it.
            base = local_path(templar, _literal_dir(self.dest))
            local = local_path(templar, t.dest)
            if _climbs(t.dest) > _climbs(self.dest):
                raise t.error(f"dest {t.dest!r} climbs out with '..' from a variable")
        if not _inside(local, base):
            raise t.error(f"local path {str(local)!r} leaves dest directory {str(base)!r}")
        t._local = Path(os.path.normpath(local))
        return t

    def facts(self) -> list[Fact[object]]:
        """The remote file's state."""
        return [PathFact(self.src)]

    def plan(self, ctx: HostContext) -> FetchPlan:
        """Compare the remote sha256 with the local file's."""
        assert self._local is not None
        st: FileState = ctx.fact(PathFact(self.src))
        if not st.exists:
            if ctx.check and ctx.predicted:
                # An earlier task of this run may create it; predict instead of failing.
                return FetchPlan(
                    changes=[f"fetch into {self._local} (expected from an earlier task)"]
                )
            if self.fail_on_missing:
                raise TaskFailed(f"{self.src} does not exist on the host")
            return FetchPlan(ok_msg=f"{self.src} does not exist")
        if st.kind != "file":
            raise TaskFailed(f"{self.src} is a {st.kind}, not a file")
        old: bytes | None = None
        if self._local.is_file():
            sha, _ = file_sha256(self._local)
            if sha == st.sha256:
                return FetchPlan(ok_msg="same checksum")
            if self._local.stat().st_size <= _DIFF_LIMIT:
                old = self._local.read_bytes()
        diff = None
        if ctx.diff:
            if st.content is not None and (old is not None or not self._local.exists()):
                diff = content_diff(old, st.content, str(self._local), ctx)
            else:
                diff = f"content of {self._local} differs (too large to diff)\n"
        verb = "update" if self._local.exists() else "create"
        return FetchPlan(changes=[f"{verb} local {self._local}"], fetched=st, diff=diff)

    def predict(self, plan: FetchPlan) -> list[Prediction] | None:
        """Fetching changes nothing on the host."""
        return []

    def apply(self, ctx: HostContext, plan: FetchPlan) -> str | None:
        """Use the fact's content when it came along, else download; verify; write locally."""
        assert self._local is not None
        st = plan.fetched
        if st is None:  # an earlier task of a check run was to create it; nothing to fetch
            raise TaskFailed(f"{self.src} does not exist on the host")
        data = st.content if st.content is not None else ctx.conn.get(self.src)
        if hashlib.sha256(data).hexdigest() != st.sha256:
            raise TaskFailed(f"{self.src} changed while it was fetched; run again")
        try:
            # Private: a fetched file may hold a secret.
            write_atomic(self._local, data, private=True)
        except OSError as exc:
            raise TaskFailed(f"cannot write {self._local}: {exc.strerror or exc}") from None
        return None


def _literal_dir(template: str) -> str:
    """The directory part of ``template`` before its first template tag (``.`` if none)."""
    cut = min((i for i in (template.find(t) for t in ("{{", "{%", "{#")) if i >= 0), default=-1)
    if cut < 0:
        return template
    head = template[:cut]
    # A template at the very start (``{{ out }}/x``) leaves only the '..' rule to apply.
    return head[: head.rfind("/") + 1] or "/"


def _climbs(path: str) -> int:
    """How many ``..`` components ``path`` has."""
    return path.split("/").count("..")


def _inside(path: Path, base: Path) -> bool:
    """Whether ``path``, normalised, is ``base`` or below it (no ``..`` climbs out)."""
    p, b = os.path.normpath(path), os.path.normpath(base)
    return p == b or p.startswith(b.rstrip("/") + "/")


#: Lowercase aliases, as playbooks usually spell tasks.
copy = Copy
fetch = Fetch
