#!/usr/bin/env python3
"""Build the sample app release tarball ``sampleapp-VERSION.tar.gz`` reproducibly.

Usage: scripts/build-sample-app VERSION [--fail-mode health|5xx|errors|slow|crash] [--out dist/]

The tarball holds ``app.py``, ``VERSION`` and ``bin/start`` at its top level (unpack it into a
release directory). Entries are sorted, owned by 0:0 with fixed modes and mtimes, and gzip
carries no name or time, so the same inputs always give the same sha256. A
``sampleapp-VERSION.tar.gz.sha256`` file (``<sha256>  <name>``) is written next to it.
``--fail-mode`` bakes a default APP_FAIL_MODE into ``bin/start`` to make a bad release.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_SOURCE = ROOT / "sampleapp" / "app.py"
# Fixed timestamp for every entry (2024-01-01T00:00:00Z); any constant works.
MTIME = 1704067200
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
FAIL_MODES = ("health", "5xx", "errors", "slow", "crash")


def start_script(fail_mode: str | None) -> str:
    """The ``bin/start`` shell script; ``fail_mode`` becomes its default APP_FAIL_MODE."""
    lines = [
        "#!/bin/sh",
        "# Start the cdlib sample app from this release directory (exec: keeps the pid).",
        "set -eu",
        'here=$(cd "$(dirname "$0")/.." && pwd)',
        "# Optional env file (KEY=value lines), e.g. written by a deploy task.",
        'if [ -n "${APP_ENV_FILE:-}" ] && [ -f "$APP_ENV_FILE" ]; then',
        "    set -a",
        '    . "$APP_ENV_FILE"',
        "    set +a",
        "fi",
    ]
    if fail_mode:
        lines += [
            "# This release was built broken on purpose (--fail-mode).",
            f': "${{APP_FAIL_MODE:={fail_mode}}}"',
            "export APP_FAIL_MODE",
        ]
    lines.append('exec "${PYTHON:-python3}" "$here/app.py" "$@"')
    return "\n".join(lines) + "\n"


def build(version: str, out_dir: Path, fail_mode: str | None = None) -> Path:
    """Write ``sampleapp-VERSION.tar.gz`` (and its .sha256) into ``out_dir``; return its path."""
    if not _VERSION_RE.match(version):
        raise ValueError(
            f"version {version!r}: use letters, digits, '.', '_', '+', '-' (max 64, no '/')"
        )
    if fail_mode is not None and fail_mode not in FAIL_MODES:
        raise ValueError(f"--fail-mode {fail_mode!r}: expected one of {', '.join(FAIL_MODES)}")
    files: dict[str, tuple[bytes, int]] = {
        "VERSION": (f"{version}\n".encode(), 0o644),
        "app.py": (APP_SOURCE.read_bytes(), 0o755),
        "bin/start": (start_script(fail_mode).encode(), 0o755),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info("bin", tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(files):
            data, mode = files[name]
            tar.addfile(_info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    blob = packed.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"sampleapp-{version}.tar.gz"
    _write_atomic(target, blob)
    digest = hashlib.sha256(blob).hexdigest()
    _write_atomic(target.with_name(target.name + ".sha256"), f"{digest}  {target.name}\n".encode())
    return target


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints ``<path> <sha256>``."""
    ap = argparse.ArgumentParser(prog="build-sample-app", description=__doc__.split("\n")[0])
    ap.add_argument("version")
    ap.add_argument("--fail-mode", choices=FAIL_MODES, default=None)
    ap.add_argument("--out", default=str(ROOT / "dist"), help="output directory (default dist/)")
    args = ap.parse_args(argv)
    try:
        path = build(args.version, Path(args.out), args.fail_mode)
    except ValueError as exc:
        print(f"build-sample-app: {exc}", file=sys.stderr)
        return 2
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
