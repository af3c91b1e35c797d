"""Host key checks as OpenSSH makes them, against OpenSSH's known_hosts files.

What is read: the user files (``UserKnownHostsFile`` from ``~/.ssh/config``, default
``~/.ssh/known_hosts ~/.ssh/known_hosts2``, or ``cdlib_known_hosts_file`` instead) and
the global files (``GlobalKnownHostsFile``, default ``/etc/ssh/ssh_known_hosts
/etc/ssh/ssh_known_hosts2``, never written). Understood: hashed names
(``|1|salt|hash``), ``[host]:port`` for ports other than 22, comma-separated patterns
with ``*``, ``?`` and ``!``, the ``@revoked`` marker; ``@cert-authority`` lines are
skipped (cdlib does not take host certificates).

The verdict for a key a host offers follows OpenSSH: revoked if a matching ``@revoked``
line holds it; known if any matching line holds it; changed if a matching line holds
another key of the same type (that line is named, like OpenSSH's "Offending key in
FILE:LINE"); otherwise new (also when the host is known only with keys of other types).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


@dataclass(frozen=True)
class Entry:
    """One known_hosts line: where it is, its marker, host patterns and key."""

    path: str
    line: int
    marker: str | None
    hosts: str
    key_type: str
    blob: bytes

    @property
    def where(self) -> str:
        """``FILE:LINE``."""
        return f"{self.path}:{self.line}"

    def matches(self, name: str) -> bool:
        """Whether this line's host field names ``name`` (already in ``[host]:port`` form)."""
        if self.hosts.startswith("|1|"):
            return _hashed_matches(self.hosts, name)
        hit = False
        for pat in self.hosts.split(","):
            negated = pat.startswith("!")
            if _glob(pat[1:] if negated else pat).fullmatch(name.lower()):
                if negated:
                    return False
                hit = True
        return hit


@dataclass(frozen=True)
class Verdict:
    """What the known_hosts files say of a key: ``status`` and the line that decided.

    ``entry`` is the revoking or offending line (``revoked``/``changed``) or the line
    that holds the key (``known``); ``others`` are the lines of other key types for the
    host (``new``).
    """

    status: Literal["known", "new", "changed", "revoked"]
    entry: Entry | None = None
    others: tuple[Entry, ...] = ()


def host_name(address: str, port: int) -> str:
    """The name known_hosts lists a host under: ``address``, or ``[address]:port``."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def expand_path(path: str, *, user: str = "", host: str = "") -> str:
    """A known_hosts path as ssh_config gives it: ``~`` and the tokens %d %u %h %%."""
    home = os.path.expanduser("~")
    tokens = {"d": home, "u": user or os.environ.get("USER", ""), "h": host, "%": "%"}
    path = re.sub(r"%(.)", lambda m: tokens.get(m.group(1), m.group(0)), path)
    return os.path.expanduser(path)


def files_from_config(
    ssh_config: Mapping[str, object], *, user: str = "", host: str = ""
) -> tuple[list[str], list[str]]:
    """(user files, global files) named by an ssh_config lookup, with OpenSSH's defaults.

    A value may list several files; ``none`` means no file.
    """

    def split(key: str, default: Sequence[str]) -> list[str]:
        raw = ssh_config.get(key)
        words = str(raw).split() if raw else list(default)
        if [w.lower() for w in words] == ["none"]:
            return []
        return [expand_path(w, user=user, host=host) for w in words]

    return (
        split("userknownhostsfile", DEFAULT_USER_FILES),
        split("globalknownhostsfile", DEFAULT_GLOBAL_FILES),
    )


def check(entries: Iterable[Entry], key_type: str, blob: bytes) -> Verdict:
    """The verdict on ``blob`` (of ``key_type``) given the host's matching lines."""
    changed: Entry | None = None
    known: Entry | None = None
    others: list[Entry] = []
    for e in entries:
        if e.marker == "@revoked":
            if e.blob == blob:
                return Verdict("revoked", e)
        elif e.marker is not None:
            continue
        elif e.key_type != key_type:
            others.append(e)
        elif e.blob == blob:
            known = known or e
        else:
            changed = changed or e
    if known is not None:
        return Verdict("known", known)
    if changed is not None:
        return Verdict("changed", changed)
    return Verdict("new", None, tuple(others))


def lookup(paths: Iterable[str], name: str) -> list[Entry]:
    """Every line of the files at ``paths`` (missing ones skipped) that names ``name``."""
    out: list[Entry] = []
    for path in paths:
        parsed = _parsed(path)
        if parsed is None:
            continue
        plain, other = parsed
        mine = plain.get(name.lower(), []) + [e for e in other if e.matches(name)]
        out += sorted(mine, key=lambda e: e.line)
    return out


def parse(text: str, path: str) -> list[Entry]:
    """The entries of known_hosts ``text`` (lines it cannot read are skipped, as ssh does)."""
    out: list[Entry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = None
        if fields[0].startswith("@"):
            marker = fields.pop(0)
            if marker not in ("@revoked", "@cert-authority"):
                continue
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append(Entry(path, n, marker, fields[0], fields[1], blob))
    return out


_append_lock = threading.Lock()


def record(path: str, name: str, key_type: str, blob: bytes, *, hashed: bool = False) -> Verdict:
    """Append ``name``'s key to the user file at ``path`` unless it is there already.

    Creates the file 0600 (and its directory 0700). The check and the append happen
    under a lock (a thread lock and ``flock`` on the file), so hosts of one run, or two
    runs, recording at once neither duplicate nor lose lines, and a key of the same type
    recorded meanwhile by someone else wins: the verdict says ``changed`` then.
    """
    p = Path(path)
    if not p.parent.is_dir():
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _append_lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(fd, "r+b", closefd=False) as fh:
                text = fh.read().decode("utf-8", "replace")
            mine = [e for e in parse(text, path) if e.matches(name)]
            verdict = check(mine, key_type, blob)
            if verdict.status in ("known", "changed", "revoked"):
                return verdict
            host = _hash_name(name) if hashed else name
            line = f"{host} {key_type} {base64.b64encode(blob).decode()}\n"
            if text and not text.endswith("\n"):
                line = "\n" + line
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    return Verdict("new")


# -- internals ---------------------------------------------------------------------

_cache_lock = threading.Lock()
# path -> ((mtime_ns, size, inode), plain names -> entries, other entries)
_cache: dict[str, tuple[tuple[int, int, int], dict[str, list[Entry]], list[Entry]]] = {}


def _parsed(path: str) -> tuple[dict[str, list[Entry]], list[Entry]] | None:
    """The file at ``path`` indexed by plain host name, parsed once per version of it.

    With one line per host, parsing the file for every host would be quadratic.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    version = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    plain: dict[str, list[Entry]] = {}
    other: list[Entry] = []
    for e in parse(text, path):
        if e.hosts.startswith("|") or any(c in e.hosts for c in ",*?!"):
            other.append(e)
        else:
            plain.setdefault(e.hosts.lower(), []).append(e)
    with _cache_lock:
        _cache[path] = (version, plain, other)
    return plain, other


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    )


def _hashed_matches(field: str, name: str) -> bool:
    parts = field.split("|")
    if len(parts) != 4:
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        want = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    got = hmac.new(salt, name.lower().encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, want)


def _hash_name(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.lower().encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
