"""Build tiny pure-Python wheels for tests, offline and in milliseconds.

A wheel is a zip file with the package, METADATA, WHEEL and a RECORD of hashes; writing
one directly avoids needing setuptools/wheel (or the network) in the test environment.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def make_wheel(out_dir: Path, name: str, version: str) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` (module ``name`` with ``VERSION``)."""
    mod = name.replace("-", "_")
    info = f"{mod}-{version}.dist-info"
    files = {
        f"{mod}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: cdlib-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel
