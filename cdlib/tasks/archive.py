"""``unarchive``: unpack a tar or zip archive into a directory, once per archive version.

A marker file inside the destination records the archive's sha256, so a re-run
with the same archive does nothing (no upload, no unpack). The archive is unpacked
into a temporary directory beside the destination and renamed into place, so a
half-unpacked tree is never at the destination.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

from cdlib.connections.shell import q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Prediction, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.facts.system import ToolsFact
from cdlib.tasks._local import file_sha256, local_path
from cdlib.tasks._upload import STDIN_LIMIT, temp_name
from cdlib.tasks.absent import dangerous_path
from cdlib.tasks.files import _Attrs, check_abs_path, normalize_mode

#: Name of the marker file (inside ``dest``) holding the unpacked archive's sha256.
MARKER = ".cdlib-unarchive.sha256"
_TOOLS = ToolsFact("unzip", "python3", "tar")


def archive_format(name: str) -> str | None:
    """``tar`` (any compression GNU tar reads) or ``zip`` from a file name, else None."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    tar_ext = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")
    if lower.endswith(tar_ext):
        return "tar"
    return None


def extract_command(fmt: str, archive: str, into: str, tools: Mapping[str, str]) -> str:
    """The command unpacking ``archive`` into directory ``into`` with a tool the host has."""
    if fmt == "tar":
        if "tar" not in tools:
            raise TaskFailed("the host has no 'tar' to unpack a tar archive")
        return f"tar -xf {archive} -C {into} --no-same-owner"
    if "unzip" in tools:
        return f"unzip -q -o {archive} -d {into}"
    if "python3" in tools:
        return f"python3 -m zipfile -e {archive} {into}"
    raise TaskFailed("the host has neither 'unzip' nor 'python3' to unpack a zip archive")


def _replaceable(name: str, path: str) -> str | None:
    """:data:`~cdlib.engine.task.OptionCheck`: ``dest`` is absolute and may be replaced."""
    if not path.startswith("/"):
        return f"option {name!r} must be an absolute path, got {path!r}"
    why = dangerous_path(path.rstrip("/") or "/")
    return f"refusing to replace {path!r}: {why}" if why else None


@dataclass(kw_only=True)
class UnarchivePlan(Plan):
    """An unarchive plan: whether to unpack (with which format and archive checksum)."""

    unpack: bool = False
    format: str = "tar"
    sha256: str = ""
    #: ``dest`` as planning found it (``None`` when unknown).
    before: FileState | None = None


@dataclass
class Unarchive(_Attrs[UnarchivePlan]):
    """Unpack an archive so that ``dest`` holds exactly its content.

    Options: ``src`` (local archive, relative to the playbook's directory, or a path on
    the host with ``remote_src=True``); ``dest`` (directory; replaced as a whole by the
    archive's content, files not in the archive do not survive); ``format`` (``tar`` or
    ``zip``; default from the file name: ``.tar.gz``, ``.tgz``, ``.tar.xz``, ``.zip``...);
    ``creates`` (skip when this path exists); ``mode`` of ``dest`` (default from the
    umask); ``owner``/``group`` (applied to the whole tree). Zip needs ``unzip`` or
    ``python3`` on the host, tar needs ``tar``; the task picks what the host has.

    Already unpacked is known from ``dest/.cdlib-unarchive.sha256``: with the same
    archive a re-run does nothing, not even an upload. Check mode reports
    ``unpack <src> into <dest>`` (and ``replace existing <dest>`` when one is there).

    Example:
        ```python
        play.task(
            tasks.unarchive("builds/app-{{ version }}.tar.gz", "/srv/app/releases/{{ version }}")
        )
        ```
    """

    src: str = field(metadata=option(templated=True))
    dest: str = field(metadata=option(templated=True, check=_replaceable))
    remote_src: bool = False
    format: Literal["tar", "zip"] | None = None
    creates: str | None = field(default=None, metadata=option(templated=True))

    kind = "unarchive"

    batchable = True  # apply only runs checked commands, output unread

    _local: Path | None = field(default=None, init=False, repr=False)
    _sha: str = field(default="", init=False, repr=False)

    def validate(self) -> None:
        """Known format; an absolute remote src (``dest`` is checked by its metadata)."""
        self._validate_attrs()
        if self.pending("src"):
            return
        if self.format is None and archive_format(self.src) is None:
            raise self.error(
                f"cannot tell the archive format of {self.src!r}; set format='tar' or 'zip'"
            )
        if self.remote_src:
            check_abs_path(self, self.src, "src")

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render options; checksum a local archive (before any host is touched)."""
        t = super().prepare(variables, templar)
        if t.remote_src:
            return t
        src = local_path(templar, t.src)
        try:
            sha, _ = file_sha256(src)
        except OSError as exc:
            raise t.error(f"cannot read src {str(src)!r}: {exc.strerror}") from None
        t._local = src
        t._sha = sha
        return t

    @property
    def _dest(self) -> str:
        return self.dest.rstrip("/")

    @property
    def _marker(self) -> str:
        return posixpath.join(self._dest, MARKER)

    def describe(self) -> str:
        """``unarchive src -> dest``."""
        return f"unarchive {self.src} -> {self.dest}"

    def facts(self) -> list[Fact[object]]:
        """Marker, dest, tools, and a remote archive's checksum."""
        out: list[Fact[object]] = [PathFact(self._marker), PathFact(self._dest), _TOOLS]
        if self.remote_src:
            out.append(PathFact(self.src))
        if self.creates:
            out.append(PathFact(self.creates))
        return out

    def plan(self, ctx: HostContext) -> UnarchivePlan:
        """Unpacked already when the marker holds the archive's sha256."""
        if self.creates and ctx.fact(PathFact(self.creates)).exists:
            return UnarchivePlan(ok_msg=f"{self.creates} exists")
        sha = self._sha
        if self.remote_src:
            st_src: FileState = ctx.fact(PathFact(self.src))
            if not st_src.exists:
                if ctx.check and ctx.predicted:
                    return UnarchivePlan(
                        changes=[
                            f"unpack {self.src} into {self._dest} (archive expected from "
                            "an earlier task)"
                        ],
                        affects=[self._dest],
                    )
                raise TaskFailed(f"archive {self.src} does not exist on the host")
            if st_src.kind != "file":
                raise TaskFailed(f"archive {self.src} is a {st_src.kind}, not a file")
            sha = st_src.sha256 or ""
        marker: FileState = ctx.fact(PathFact(self._marker))
        dest: FileState = ctx.fact(PathFact(self._dest))
        if dest.exists and dest.kind != "directory":
            raise TaskFailed(f"{self._dest} exists and is a {dest.kind}, not a directory")
        fmt = self.format or archive_format(self.src) or "tar"
        tools = ctx.fact(_TOOLS)
        extract_command(fmt, "A", "U", tools)  # fails now (also in check mode) if no tool
        if marker.content is not None and marker.content.decode(errors="replace").strip() == sha:
            changes = self._attr_changes(dest)
            return UnarchivePlan(
                changes=changes, affects=[self._dest], ok_msg="already unpacked", before=dest
            )
        changes = [f"unpack {self.src} into {self._dest}"]
        if dest.exists:
            changes.append(f"replace existing {self._dest}")
        return UnarchivePlan(
            changes=changes,
            affects=[self._dest],
            unpack=True,
            format=fmt,
            sha256=sha,
            before=dest,
        )

    def predict(self, plan: UnarchivePlan) -> list[Prediction] | None:
        """Directory and marker as the unpack leaves them (for later tasks in check mode)."""
        if plan.before is None:
            return None
        before = plan.before
        dest = FileState(
            "directory",
            mode=normalize_mode(self.mode) or before.mode or "0755",
            owner=self.owner or before.owner,
            group=self.group or before.group,
        )
        out: list[Prediction] = [(PathFact(self._dest), dest)]
        if plan.unpack:
            mark = (plan.sha256 + "\n").encode()
            marker = FileState(
                "file", size=len(mark), sha256=hashlib.sha256(mark).hexdigest(), content=mark
            )
            out.append((PathFact(self._marker), marker))
        return out

    def apply(self, ctx: HostContext, plan: UnarchivePlan) -> str | None:
        """Upload (local archives), unpack beside dest, mark, rename into place: one command."""
        from cdlib.connections.shell import attrs_command

        mode = normalize_mode(self.mode)
        if not plan.unpack:
            ctx.run(attrs_command(self._dest, mode, self.owner, self.group))
            return None
        fmt, sha = plan.format, plan.sha256
        tools = ctx.fact(_TOOLS)
        parent = posixpath.dirname(self._dest) or "/"
        stdin: bytes | None = None
        steps = ["set -e", f"mkdir -p -- {q(parent)}"]
        cleanup = ['rm -rf "$u"']
        if self.remote_src:
            steps.append(f"a={q(self.src)}")
        else:
            assert self._local is not None
            tmp = temp_name(self._dest, "arc")
            steps.append(f"a={q(tmp)}")
            cleanup.append('rm -f "$a"')
            if self._local.stat().st_size <= STDIN_LIMIT:
                stdin = self._local.read_bytes()
            else:
                ctx.conn.put(self._local.read_bytes(), tmp)
        base = posixpath.basename(self._dest)
        steps += [
            f"u=$(mktemp -d {q(posixpath.join(parent, '.' + base + '.cdlib-unpack-XXXXXX'))})",
            "trap '" + "; ".join(cleanup).replace("'", "'\\''") + "' EXIT",
        ]
        if stdin is not None:
            steps.append('cat > "$a"')
        steps.append(extract_command(fmt, '"$a"', '"$u"', tools))
        steps.append(f'printf "%s\\n" {q(sha)} > "$u"/{MARKER}')
        steps.append(
            f'chmod {q(mode)} "$u"' if mode else 'chmod "$(printf %o $((0777 & ~$(umask))))" "$u"'
        )
        if self.owner or self.group:
            spec = f"{self.owner or ''}:{self.group or ''}" if self.owner else f":{self.group}"
            steps.append(f'chown -R -h {q(spec)} "$u"')
        old = posixpath.join(parent, "." + base + ".cdlib-old-" + sha[:12])
        steps += [
            f"o={q(old)}",
            'rm -rf "$o"',
            f'if [ -e {q(self._dest)} ]; then mv -T -- {q(self._dest)} "$o"; fi',
            f'mv -T -- "$u" {q(self._dest)}',
            'rm -rf "$o"',
        ]
        ctx.run("\n".join(steps), stdin=stdin)
        return None


#: Lowercase alias, as playbooks usually spell tasks.
unarchive = Unarchive
