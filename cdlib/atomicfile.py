"""Writing a local file atomically: the one helper every layer uses.

The data goes to a temp file in the target's directory (created 0600 by ``mkstemp``, so a
secret is never readable by others, not even half-written), is flushed and fsynced, gets
its final mode, and is then renamed over the target (or, with ``exclusive``, hard-linked
to it, which fails when the name exists). Readers see the old file or the new one, never
a part. Host-side writes go through the shell (``cdlib.connections.shell``) instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Mode of a file created ``private``: readable by its owner only.
PRIVATE = 0o600


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    private: bool = False,
    mode: int | None = None,
    exclusive: bool = False,
) -> None:
    """Write ``data`` (text is UTF-8) to the local file ``path`` atomically.

    The final mode is ``0600`` with ``private`` (for anything that may hold a secret),
    else ``mode`` when given, else the mode of the file being replaced, else ``0644``.
    With ``exclusive`` the file is created only when ``path`` does not exist
    (:class:`FileExistsError` otherwise): an atomic exclusive create of complete content.
    The parent directory is created when missing.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if private:
        final = PRIVATE
    elif mode is not None:
        final = mode
    else:
        try:
            final = p.stat().st_mode & 0o7777
        except FileNotFoundError:
            final = 0o644
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if final != PRIVATE:
            os.chmod(tmp, final)
        if exclusive:
            os.link(tmp, p)
            os.unlink(tmp)
        else:
            os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
