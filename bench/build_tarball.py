"""Build the benchmark's release tarball: the sample app plus ~1 MB of padding.

The padding is incompressible but deterministic (SHAKE-256 of a fixed seed), and every
tar entry has a fixed owner, mode and mtime while gzip carries no name or time, so the
same version always gives the same bytes and the same sha256: uploads can be skipped
by checksum on a re-run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_SOURCE = ROOT / "sampleapp" / "app.py"
#: 2024-01-01T00:00:00Z; any constant works.
MTIME = 1704067200
PADDING_BYTES = 1024 * 1024


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def tarball_bytes(version: str) -> bytes:
    """The gzip'd tar of release ``version`` (same bytes every time)."""
    files: dict[str, tuple[bytes, int]] = {
        "VERSION": (f"{version}\n".encode(), 0o644),
        "app.py": (APP_SOURCE.read_bytes(), 0o755),
        "bin/check": (
            b'#!/bin/sh\n# Health check of the release: prints its version.\nhere=$(dirname "$0")\n'
            b'exec cat "$here/../VERSION"\n',
            0o755,
        ),
        "assets/blob.bin": (
            hashlib.shake_256(f"cdlib-bench-{version}".encode()).digest(PADDING_BYTES),
            0o644,
        ),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("assets", "bin"):
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(files):
            data, mode = files[name]
            tar.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, compresslevel=6, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def build(version: str, out_dir: Path) -> Path:
    """Write ``app-VERSION.tar.gz`` into ``out_dir`` (atomically, only when it differs)."""
    data = tarball_bytes(version)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"app-{version}.tar.gz"
    if target.is_file() and target.read_bytes() == data:
        return target
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target


if __name__ == "__main__":
    import sys

    p = build(sys.argv[1] if len(sys.argv) > 1 else "1.0.0", ROOT / "bench" / ".work")
    print(p, hashlib.sha256(p.read_bytes()).hexdigest())
