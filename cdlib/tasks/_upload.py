"""Send content to a host and install it atomically at a path."""

from __future__ import annotations

import posixpath
import secrets
from pathlib import Path

from cdlib.connections.shell import atomic_write_command, install_temp_command, q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext

#: Content up to this size goes in the command's stdin (one round trip); larger content
#: goes over SFTP to a temp name first (one transfer + one command, plus opening SFTP).
#: The exec channel streams as fast as SFTP does, so only memory bounds this.
STDIN_LIMIT = 16 * 1024 * 1024


def temp_name(path: str, tag: str = "up") -> str:
    """A unique hidden name beside ``path`` (same directory, so a rename is atomic)."""
    d = posixpath.dirname(path) or "."
    return posixpath.join(d, f".{posixpath.basename(path)}.cdlib-{tag}-{secrets.token_hex(6)}")


def install(
    ctx: HostContext,
    path: str,
    content: bytes | Path,
    *,
    mode: str | None = None,
    owner: str | None = None,
    group: str | None = None,
) -> None:
    """Write ``content`` (bytes or a local file) to ``path`` atomically with attributes."""
    size = content.stat().st_size if isinstance(content, Path) else len(content)
    if size <= STDIN_LIMIT:
        data = content.read_bytes() if isinstance(content, Path) else content
        ctx.run(atomic_write_command(path, mode, owner, group), stdin=data)
        return
    tmp = temp_name(path)
    data = content.read_bytes() if isinstance(content, Path) else content
    try:
        ctx.conn.put(data, tmp)
    except OSError as exc:
        ctx.run(f"rm -f -- {q(tmp)}", check=False)
        raise TaskFailed(f"upload to {tmp} failed: {exc}") from None
    ctx.run(install_temp_command(tmp, path, mode, owner, group))
