"""The local state store: one directory, a file per key (the default).

``$CDLIB_STATE_DIR`` or ``~/.local/state/cdlib`` (``$XDG_STATE_HOME/cdlib``). Every write
goes through :func:`cdlib.atomicfile.write_atomic`; a create-only put is its exclusive
create (``link(2)``), and a put or delete conditional on an ETag (the sha256 of the
content) compares and writes under an ``flock`` of the file's directory, so two
processes on this machine (or sharing the directory) never both win.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdlib.atomicfile import write_atomic
from cdlib.state.store import Blob, PreconditionFailed, StateError, Store, check_key


def default_root() -> Path:
    """``$CDLIB_STATE_DIR``, else ``$XDG_STATE_HOME/cdlib`` or ``~/.local/state/cdlib``."""
    env = os.environ.get("CDLIB_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "cdlib"


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _flock(path: Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (a directory or a lock file); the kernel drops it when
    the process dies."""
    is_dir = path.is_dir()
    fd = os.open(path, os.O_RDONLY if is_dir else os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise StateError(
                        f"{path} still locked after {timeout:g}s: a router call of the "
                        "running release does not end"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing drops the flock


class LocalStore(Store):
    """State in the directory ``root`` (default :func:`default_root`)."""

    lease = None

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    @property
    def location(self) -> str:
        """The directory."""
        return str(self.root)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.root / check_key(key)

    def where(self, key: str) -> str:
        """The file of ``key``."""
        return str(self.path(key))

    def get(self, key: str) -> Blob | None:
        """The file's bytes; ``None`` when it does not exist."""
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path(key)}: cannot read: {exc.strerror or exc}") from None
        return Blob(data, _etag(data))

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        private: bool = True,
    ) -> str:
        """Write the file atomically (0600 when ``private``, else 0644)."""
        path = self.path(key)
        mode = None if private else 0o644
        if if_none_match:
            try:
                write_atomic(path, data, private=private, mode=mode, exclusive=True)
            except FileExistsError:
                raise PreconditionFailed(f"{path} exists") from None
            return _etag(data)
        if if_match is None:
            write_atomic(path, data, private=private, mode=mode)
            return _etag(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _flock(path.parent):
            self._require(key, if_match)
            write_atomic(path, data, private=private, mode=mode)
        return _etag(data)

    def _require(self, key: str, etag: str) -> None:
        now = self.get(key)
        if now is None or now.etag != etag:
            raise PreconditionFailed(f"{self.path(key)} changed (or is gone)")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove the file."""
        path = self.path(key)
        if if_match is None:
            path.unlink(missing_ok=True)
            return
        if not path.parent.is_dir():
            raise PreconditionFailed(f"{path} is gone")
        with _flock(path.parent):
            self._require(key, if_match)
            path.unlink(missing_ok=True)

    def names(self, prefix: str) -> list[str]:
        """Files directly in the directory ``prefix`` (temp files of writes left out)."""
        d = self.path(prefix)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_file() and not p.name.startswith("."))

    def children(self, prefix: str) -> list[str]:
        """Sub-directories of ``prefix`` (``""``: of the root)."""
        d = self.path(prefix) if prefix else self.root
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))

    @contextmanager
    def mutex(self, key: str, *, timeout: float) -> Iterator[None]:
        """``flock`` on the file of ``key``."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _flock(path, timeout=timeout):
            yield
