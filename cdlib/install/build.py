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


def check_members(members: Iterable[tuple[str, str, str | None]], writes: Sequence[str]) -> None:
    """Refuse a build whose members escape, or whose ``writes`` go through a symlink.

    ``members`` are ``(name, kind, linkname)`` with kind ``"sym"``, ``"hard"`` or
    ``"other"``, in archive order (a later member replaces an earlier one at the same
    path). ``writes`` are the paths inside the release that cdlib writes or replaces.
    Raises :class:`BuildRefused` naming the member and its target.
    """
    table: dict[str, Member] = {}
    for name, kind, linkname in members:
        if name.startswith("/") or ".." in name.split("/"):
            raise BuildRefused(f"member {name!r} has a path outside the release")
        key = _where(name, table)
        if kind == "hard":
            target = linkname or ""
            if target.startswith("/") or ".." in target.split("/"):
                raise BuildRefused(f"member {name!r} is a hard link to {target!r}, outside")
            # A hard link to a symlink member is that symlink again, at another path.
            prev = table.get(_where(target, table))
            table[key] = Member(name, prev.link if prev else None)
        elif kind == "sym":
            table[key] = Member(name, linkname or "")
        else:
            table[key] = Member(name)
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


_checked: dict[tuple[str, int, int, tuple[str, ...]], str] = {}
_checked_lock = threading.Lock()


def check_build(path: Path, writes: Sequence[str]) -> None:
    """Read the tarball at ``path`` and apply :func:`check_members` (cached per file state).

    Raises :class:`BuildRefused` (also for an archive that cannot be read).
    """
    import tarfile  # only when installing: keeps ``import cdlib`` quick

    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, tuple(sorted(writes)))
    with _checked_lock:
        if key in _checked:
            if _checked[key]:
                raise BuildRefused(_checked[key])
            return
    verdict = ""
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
        check_members(members, writes)
    except BuildRefused as exc:
        verdict = str(exc)
    except (tarfile.TarError, EOFError, OSError) as exc:
        verdict = f"cannot read it as a tar archive: {exc}"
    with _checked_lock:
        _checked[key] = verdict
    if verdict:
        raise BuildRefused(verdict)
