"""The state of a path on a host: type, mode, owner, checksum, link target, small content."""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Hashable
from dataclasses import dataclass

from cdlib.facts.base import Fact

#: Files up to this size come back with their content, so a diff costs no extra round trip.
CONTENT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class FileState:
    """What is at a path. ``kind`` is ``absent``, ``file``, ``directory``, ``link`` or ``other``."""

    kind: str
    mode: str | None = None
    owner: str | None = None
    group: str | None = None
    size: int | None = None
    sha256: str | None = None
    target: str | None = None
    content: bytes | None = None
    #: For an absent path: the nearest directory above it that exists (``None`` when
    #: not read). Equal to the path's parent when only the path itself is missing.
    base: str | None = None

    @property
    def exists(self) -> bool:
        """True for anything but ``absent``."""
        return self.kind != "absent"


class PathFact(Fact[FileState]):
    """lstat-like facts of one path, plus sha256 and (small) content for regular files."""

    def __init__(self, path: str) -> None:
        self.path: str = path

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("path", self.path)

    def command(self) -> str:
        """Snippet printing ``key=value`` lines.

        Every process it starts costs the host a fork and exec, which is what a
        no-change run mostly pays for; so one ``stat`` reads all attributes, and a
        small file's sha256 is computed locally from its content instead of remotely.
        """
        p = shlex.quote(str(self.path))
        return (
            f"p={p}; "
            'if [ -L "$p" ]; then echo kind=link; printf "target=%s\\n" "$(readlink -- "$p")"; '
            'elif [ -d "$p" ]; then echo kind=directory; '
            'elif [ -f "$p" ]; then echo kind=file; '
            'elif [ -e "$p" ]; then echo kind=other; '
            # An absent path also says how much of its parent exists: builtins only, so a
            # present path costs nothing more.
            'else echo kind=absent; d=${p%/*}; while [ -n "$d" ] && [ ! -d "$d" ]; do '
            'd=${d%/*}; done; printf "base=%s\\n" "${d:-/}"; exit 0; fi; '
            's=$(stat --printf "mode=%a\\nowner=%U\\ngroup=%G\\nsize=%s" -- "$p") && '
            'printf "%s\\n" "$s"; '
            '[ -f "$p" ] && [ ! -L "$p" ] || exit 0; '
            f'if [ "${{s##*size=}}" -le {CONTENT_LIMIT} ] 2>/dev/null; then '
            'c=$(base64 -w0 -- "$p") && printf "content=%s\\n" "$c"; '
            'else printf "sha256=%s\\n" "$(sha256sum < "$p")"; fi'
        )

    def parse(self, output: str, exit_code: int) -> FileState:
        """Parse the snippet's ``key=value`` lines."""
        return parse_path_state(output)


def parse_path_state(output: str) -> FileState:
    """Pure parser of :class:`PathFact` output (unit-tested from canned text)."""
    fields: dict[str, str] = {}
    for line in output.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            fields.setdefault(k.strip(), v)
    kind = fields.get("kind", "absent")
    if kind == "absent":
        return FileState("absent", base=fields.get("base"))
    content = None
    if "content" in fields:
        try:
            content = base64.b64decode(fields["content"], validate=True)
        except ValueError:
            content = None
    mode = fields.get("mode")
    # sha256sum prints "<hex>  -"; a small file's sum is taken from its content.
    sha = fields.get("sha256", "").split(" ")[0] or None
    if sha is None and content is not None:
        sha = hashlib.sha256(content).hexdigest()
    return FileState(
        kind=kind,
        mode=mode.zfill(4) if mode else None,
        owner=fields.get("owner"),
        group=fields.get("group"),
        size=int(fields["size"]) if fields.get("size", "").isdigit() else None,
        sha256=sha,
        target=fields.get("target"),
        content=content,
    )
