"""Checks of a build tarball before it reaches any host: nothing in it may point outside.

A release is written into (REVISION, rendered templates, the env file, links to
``shared/``); a symlink shipped in the build would redirect those writes, or the app's own,
to anywhere on the host. So a build is refused when a member's name leaves the release
(absolute, ``..``), when a symlink's target is absolute or resolves outside the release
(following chains of symlinks inside the build, as the kernel would), when a hard link
names something outside, and when a path cdlib writes to goes through a symlink of the
build. The host-side install script checks the unpacked tree again (see
:func:`cdlib.install.scripts.install_script`); this check names the problem
before any host is touched. (GNU tar itself never unpacks a member through a link whose
target is absolute or has ``..``: it creates such links last.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Symlinks followed while resolving one path before it counts as a loop (Linux: 40).
MAX_LINKS = 40


class BuildRefused(ValueError):
    """A build member that would make writes land outside the release directory."""


@dataclass(frozen=True)
class Member:
    """What a build member is at its (normalised) path: a symlink and its target, or not."""

    name: str  # as stored in the archive
    link: str | None = None  # symlink target, None for anything else


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(path: str, members: Mapping[str, Member]) -> tuple[str | None, str]:
    """Resolve ``path`` (relative to the release) through the build's symlinks.

    Returns ``(resolved, "")`` when it stays inside (``resolved`` relative, ``""`` for the
    release itself), else ``(None, why)``. Components that are not symlinks of the build
    are taken as they are, like ``realpath -m``.
    """
    todo = _parts(path)
    done: list[str] = []
    hops = 0
    via = ""
    while todo:
        part = todo.pop(0)
        if part == "..":
            if not done:
                return None, "it leads outside the release" + via
            done.pop()
            continue
        done.append(part)
        m = members.get("/".join(done))
        if m is None or m.link is None:
            continue
        hops += 1
        if hops > MAX_LINKS:
            return None, "it is a loop of symlinks"
        if m.link.startswith("/"):
            return None, f"{'/'.join(done)} points to an absolute path"
        if hops > 1:
            via = f" via {m.name!r} -> {m.link!r}"
        done.pop()
        todo = _parts(m.link) + todo
    return "/".join(done), ""


def _where(name: str, table: Mapping[str, Member]) -> str:
    """Where member ``name`` lands: its directory resolved through the symlinks so far."""
    parts = _parts(name)
    if not parts:
        return ""
    parent, why = resolve("/".join(parts[:-1]), table)
    if parent is None:
        m = table.get("/".join(parts[:-1]))
        raise BuildRefused(
            f"member {name!r} is unpacked through a symlink outside the release ({why})"
            + (f": {m.name!r} -> {m.link!r}" if m is not None and m.link is not None else "")
        )
    return f"{parent}/{parts[-1]}" if parent else parts[-1]


def strip_name(name: str, strip: int) -> str | None:
    """``name`` as ``tar --strip-components=strip`` unpacks it, or ``None`` when dropped.

    GNU tar counts every component, ``.`` included (``./app/x`` stripped by 1 is
    ``app/x``), and skips repeated slashes.
    """
    if strip <= 0:
        return name
    parts = [p for p in name.split("/") if p]
    if len(parts) <= strip:
        return None
    return "/".join(parts[strip:])


def wrapper_depth(names: Iterable[str]) -> tuple[int, str]:
    """How many leading directories every member of a build sits under, and their path.

    ``app-1.2/bin/x`` and ``app-1.2/lib/y`` give ``(1, "app-1.2")``; a build with
    anything at its top level besides one directory gives ``(0, "")``.
    """
    paths = [[p for p in n.split("/") if p] for n in names]
    paths = [p for p in paths if p]
    k = 0
    while True:
        deeper = [p for p in paths if len(p) > k + 1]
        heads = {p[k] for p in deeper}
        if len(heads) != 1:
            break
        head = heads.pop()
        if any(len(p) == k + 1 and p[k] != head for p in paths):
            break
        k += 1
    return k, "/".join(paths[0][:k]) if k else ""


def check_members(
    members: Iterable[tuple[str, str, str | None]], writes: Sequence[str], strip: int = 0
) -> None:
    """Refuse a build whose members escape, or whose ``writes`` go through a symlink.

    ``members`` are ``(name, kind, linkname)`` with kind ``"sym"``, ``"hard"`` or
    ``"other"``, in archive order (a later member replaces an earlier one at the same
    path). ``writes`` are the paths inside the release that cdlib writes or replaces.
    ``strip`` leading components are removed from each name first, as the host's tar
    does (and from hard link targets, which tar strips too; a symlink's target is text
    and stays as it is, so it is judged from where the link lands).
    Raises :class:`BuildRefused` naming the member and its target.
    """
    table: dict[str, Member] = {}
    for raw, kind, raw_link in members:
        if raw.startswith("/") or ".." in raw.split("/"):
            raise BuildRefused(f"member {raw!r} has a path outside the release")
        name = strip_name(raw, strip)
        if name is None:
            continue  # tar drops a member with no more than ``strip`` components
        linkname = raw_link
        if kind == "hard" and raw_link is not None:
            if raw_link.startswith("/") or ".." in raw_link.split("/"):
                raise BuildRefused(f"member {raw!r} is a hard link to {raw_link!r}, outside")
            linkname = strip_name(raw_link, strip) or ""
        key = _where(name, table)
        if kind == "hard":
            target = linkname or ""
            if target.startswith("/") or ".." in target.split("/"):
                raise BuildRefused(f"member {name!r} is a hard link to {target!r}, outside")
            # A hard link to a symlink member is that symlink again, at another path.
            prev = table.get(_where(target, table))
            table[key] = Member(raw, prev.link if prev else None)
        elif kind == "sym":
            table[key] = Member(raw, linkname or "")
        else:
            table[key] = Member(raw)
    for key, m in table.items():
        if m.link is None:
            continue
        where, why = resolve(key, table)
        if where is None:
            raise BuildRefused(
                f"member {m.name!r} is a symlink to {m.link!r}, outside the release ({why})"
            )
    for path in writes:
        parts = _parts(path)
        for i in range(1, len(parts)):
            on_way = table.get("/".join(parts[:i]))
            if on_way is not None and on_way.link is not None:
                raise BuildRefused(
                    f"member {on_way.name!r} is a symlink to {on_way.link!r}, and cdlib writes "
                    f"{path!r} "
                    "through it; ship a real directory there"
                )


_checked: dict[tuple[str, int, int, tuple[str, ...], int], tuple[str, tuple[int, str]]] = {}
_checked_lock = threading.Lock()


def check_build(path: Path, writes: Sequence[str], strip: int = 0) -> tuple[int, str]:
    """Read the tarball at ``path`` and apply :func:`check_members` (cached per file state).

    Returns the :func:`wrapper_depth` of the build as unpacked with ``strip``.
    Raises :class:`BuildRefused` (also for an archive that cannot be read).
    """
    import tarfile  # only when installing: keeps ``import cdlib`` quick

    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, tuple(sorted(writes)), strip)
    with _checked_lock:
        if key in _checked:
            if _checked[key][0]:
                raise BuildRefused(_checked[key][0])
            return _checked[key][1]
    verdict = ""
    depth: tuple[int, str] = (0, "")
    try:
        with tarfile.open(path, mode="r:*") as tar:
            members = [
                (
                    m.name,
                    "sym" if m.issym() else "hard" if m.islnk() else "other",
                    m.linkname or None,
                )
                for m in tar
            ]
        check_members(members, writes, strip)
        kept = [strip_name(m[0], strip) for m in members]
        depth = wrapper_depth(n for n in kept if n is not None)
        if not any(n for n in kept if n is not None and n.strip("/.")):
            verdict = f"strip_components={strip} leaves nothing of it to install"
    except BuildRefused as exc:
        verdict = str(exc)
    except (tarfile.TarError, EOFError, OSError) as exc:
        verdict = f"cannot read it as a tar archive: {exc}"
    with _checked_lock:
        _checked[key] = (verdict, depth)
    if verdict:
        raise BuildRefused(verdict)
    return depth
