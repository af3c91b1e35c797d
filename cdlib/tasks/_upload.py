"""Send content to a host and install it atomically at a path."""

from __future__ import annotations

import contextlib
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
        # Sized: if this run dies midway, the short input installs nothing.
        ctx.run(
            atomic_write_command(path, mode, owner, group, size=len(data)),
            stdin=data,
            exact_stdin=True,
        )
        return
    tmp = temp_name(path)
    # Looked up before the content is read: a batched apply is refused here, at no cost.
    put = ctx.conn.put
    data = content.read_bytes() if isinstance(content, Path) else content
    try:
        # The upload is created 0600 (see Connection.put); the mode asked for is set at
        # install, so the content is never readable by others on the way.
        put(data, tmp)
        ctx.run(
            sweep_command(path, STALE_MINUTES) + install_temp_command(tmp, path, mode, owner, group)
        )
    except OSError as exc:
        ctx.run(f"rm -f -- {q(tmp)}", check=False)
        raise TaskFailed(f"upload to {tmp} failed: {exc}") from None
    except BaseException:
        with contextlib.suppress(Exception):
            ctx.run(f"rm -f -- {q(tmp)}", check=False)
        raise


#: An upload temp file untouched this long belongs to a run that was killed.
STALE_MINUTES = 60


def sweep_command(path: str, minutes: int) -> str:
    """Remove upload temp files of ``path`` left by killed runs (untouched for ``minutes``).

    A live upload keeps its file's mtime fresh, so only abandoned ones match.
    """
    d = posixpath.dirname(path) or "."
    pattern = "." + _glob_escape(posixpath.basename(path)) + ".cdlib-up-*"
    return (
        f"find {q(d)} -maxdepth 1 -type f -name {q(pattern)} -mmin +{int(minutes)} "
        "-delete 2>/dev/null; "
    )


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
