"""The release layout of one app on a host, read in one snippet.

Layout under ``root``: ``releases/<V>/`` (each with a ``REVISION`` file), ``shared/``,
``current`` (symlink to ``releases/<V>``) and ``.cdlib/`` (``releases.jsonl`` log, ``bad/<V>``
marks, ``deploy.lock``). :class:`ReleaseFact` reads all of it, plus the config files and
shared links of one version, so a task deciding "is V installed as asked" needs no other read.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdlib.facts.base import Fact

#: Log records read back; enough history for rollback and pruning decisions.
LOG_TAIL = 2000


@dataclass(frozen=True)
class ReleaseState:
    """What is installed under an app's root (see the module docstring)."""

    root: str
    exists: bool = False
    current: str | None = None  # link target of current, as stored
    releases: dict[str, int] = field(default_factory=dict)  # name -> mtime
    bad: frozenset[str] = frozenset()
    lock: str | None = None  # lock file content when the lock is held
    revision: dict[str, str] | None = None  # REVISION of the asked version
    files: dict[str, str | None] = field(default_factory=dict)  # rel path -> sha256
    links: dict[str, str | None] = field(default_factory=dict)  # rel path -> link target
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current_version(self) -> str | None:
        """The release name ``current`` points at (``None`` when there is none)."""
        if not self.current:
            return None
        prefix = self.root.rstrip("/") + "/releases/"
        t = self.current.rstrip("/")
        if t.startswith(prefix):
            return t[len(prefix) :]
        if t.startswith("releases/"):
            return t[len("releases/") :]
        return None


class ReleaseFact(Fact[ReleaseState]):
    """The app-wide release state under ``root`` (current, releases, bad marks, lock, log).

    Every release task reads this same fact, so a check-mode prediction made by one task
    is what the next one sees.
    """

    def __init__(self, root: str) -> None:
        self.path: str = root
        self.root = root.rstrip("/") or "/"

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("release", self.root)

    def command(self) -> str:
        """Snippet printing ``key=value`` lines (binary-safe values in base64)."""
        r = shlex.quote(self.root)
        return "; ".join(
            [
                f"r={r}",
                'if [ ! -d "$r" ]; then echo exists=0; exit 0; fi',
                "echo exists=1",
                'if [ -L "$r/current" ]; then '
                'printf "current=%s\\n" "$(readlink -- "$r/current")"; fi',
                'for d in "$r"/releases/*/; do [ -d "$d" ] || continue; '
                'n=$(basename -- "$d"); printf "release=%s %s\\n" "$(stat -c %Y -- "$d")" "$n"; '
                "done",
                'for b in "$r"/.cdlib/bad/*; do [ -e "$b" ] && '
                'printf "bad=%s\\n" "$(basename -- "$b")"; done',
                'if [ -f "$r/.cdlib/deploy.lock" ]; then '
                'printf "lock=%s\\n" "$(base64 -w0 -- "$r/.cdlib/deploy.lock")"; fi',
                'if [ -f "$r/.cdlib/releases.jsonl" ]; then printf "log=%s\\n" '
                f'"$(tail -n {LOG_TAIL} -- "$r/.cdlib/releases.jsonl" | base64 -w0)"; fi',
            ]
        )

    def parse(self, output: str, exit_code: int) -> ReleaseState:
        """See :func:`parse_release_state`."""
        return parse_release_state(output, self.root)


class ReleaseVersionFact(Fact[ReleaseState]):
    """One release's ``REVISION``, config file checksums and shared links.

    Parsed into a :class:`ReleaseState` where only ``revision``, ``files`` and ``links``
    are set.
    """

    def __init__(
        self, root: str, version: str, files: Sequence[str] = (), links: Sequence[str] = ()
    ) -> None:
        self.root = root.rstrip("/") or "/"
        self.path: str = f"{self.root}/releases/{version}"
        self.version = version
        self.files = tuple(files)
        self.links = tuple(links)

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("release-version", self.root, self.version, self.files, self.links)

    def command(self) -> str:
        """Snippet printing ``key=value`` lines."""
        parts = [
            f"v={shlex.quote(self.path)}",
            '[ -d "$v" ] || exit 0',
            'if [ -f "$v/REVISION" ]; then '
            'printf "revision=%s\\n" "$(base64 -w0 -- "$v/REVISION")"; fi',
        ]
        for i, f in enumerate(self.files):
            parts.append(
                f'p="$v/"{shlex.quote(f)}; if [ -f "$p" ] && [ ! -L "$p" ]; then '
                f'printf "file={i} %s\\n" "$(sha256sum -- "$p" | cut -d" " -f1)"; fi'
            )
        for i, f in enumerate(self.links):
            parts.append(
                f'p="$v/"{shlex.quote(f)}; if [ -L "$p" ]; then '
                f'printf "link={i} %s\\n" "$(readlink -- "$p")"; fi'
            )
        return "; ".join(parts)

    def parse(self, output: str, exit_code: int) -> ReleaseState:
        """See :func:`parse_release_state`."""
        return parse_release_state(output, self.root, self.files, self.links)


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def parse_revision(text: str) -> dict[str, str]:
    """A REVISION file's ``key=value`` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def parse_log(text: str) -> list[dict[str, Any]]:
    """JSON Lines of the release log; a torn or foreign line is skipped, not fatal."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def parse_release_state(
    output: str, root: str, files: Sequence[str] = (), links: Sequence[str] = ()
) -> ReleaseState:
    """Pure parser of :class:`ReleaseFact` output (unit-tested from canned text)."""
    exists = False
    current = None
    releases: dict[str, int] = {}
    bad: set[str] = set()
    lock = None
    revision = None
    fsums: dict[str, str | None] = dict.fromkeys(files)
    ltargets: dict[str, str | None] = dict.fromkeys(links)
    log: list[dict[str, Any]] = []
    for line in output.splitlines():
        k, sep, v = line.partition("=")
        if not sep:
            continue
        if k == "exists":
            exists = v.strip() == "1"
        elif k == "current":
            current = v
        elif k == "release":
            mtime, _, name = v.partition(" ")
            releases[name] = int(mtime) if mtime.isdigit() else 0
        elif k == "bad":
            bad.add(v)
        elif k == "lock":
            lock = _b64(v)
        elif k == "revision":
            revision = parse_revision(_b64(v))
        elif k in ("file", "link"):
            idx, _, val = v.partition(" ")
            names = files if k == "file" else links
            if idx.isdigit() and int(idx) < len(names):
                (fsums if k == "file" else ltargets)[names[int(idx)]] = val
        elif k == "log":
            log = parse_log(_b64(v))
    return ReleaseState(
        root=root.rstrip("/") or "/",
        exists=exists,
        current=current,
        releases=releases,
        bad=frozenset(bad),
        lock=lock,
        revision=revision,
        files=fsums,
        links=ltargets,
        log=log,
    )
