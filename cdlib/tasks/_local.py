"""Local files that tasks send to hosts: lookup beside the playbook, cached checksums."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from cdlib.engine.templating import Templar

_lock = threading.Lock()
# (path, mtime_ns, size) -> sha256: every host of a run asks for the same file's checksum.
_sums: dict[tuple[str, int, int], str] = {}


def local_path(templar: Templar, name: str) -> Path:
    """``name`` as is when absolute, else relative to the playbook's directory."""
    p = Path(name).expanduser()
    return p if p.is_absolute() else templar.search_path[0] / p


def file_sha256(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size of a local file, computed once per version of the file."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _lock:
        if key in _sums:
            return _sums[key], st.st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _lock:
        _sums[key] = digest
    return digest, st.st_size
