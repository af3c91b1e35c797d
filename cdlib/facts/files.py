"""The state of a path on a host: type, mode, owner, checksum, link target, small content."""

from __future__ import annotations

import base64
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

    @property
    def exists(self) -> bool:
        """True for anything but ``absent``."""
        return self.kind != "absent"


class PathFact(Fact):
    """lstat-like facts of one path, plus sha256 and (small) content for regular files."""

    def __init__(self, path: str) -> None:
        self.path: str = path

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("path", self.path)

    def command(self) -> str:
        """Snippet printing ``key=value`` lines."""
        p = shlex.quote(str(self.path))
        return (
            f"p={p}; "
            'if [ -L "$p" ]; then echo kind=link; printf "target=%s\\n" "$(readlink -- "$p")"; '
            'elif [ -d "$p" ]; then echo kind=directory; '
            'elif [ -f "$p" ]; then echo kind=file; '
            'printf "sha256=%s\\n" "$(sha256sum -- "$p" | cut -d" " -f1)"; '
            f'if [ "$(stat -c %s -- "$p")" -le {CONTENT_LIMIT} ]; then '
            'printf "content=%s\\n" "$(base64 -w0 -- "$p")"; fi; '
            'elif [ -e "$p" ]; then echo kind=other; '
            "else echo kind=absent; exit 0; fi; "
            'stat --printf "mode=%a\\nowner=%U\\ngroup=%G\\nsize=%s\\n" -- "$p"'
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
        return FileState("absent")
    content = None
    if "content" in fields:
        try:
            content = base64.b64decode(fields["content"], validate=True)
        except ValueError:
            content = None
    mode = fields.get("mode")
    return FileState(
        kind=kind,
        mode=mode.zfill(4) if mode else None,
        owner=fields.get("owner"),
        group=fields.get("group"),
        size=int(fields["size"]) if fields.get("size", "").isdigit() else None,
        sha256=fields.get("sha256") or None,
        target=fields.get("target"),
        content=content,
    )
