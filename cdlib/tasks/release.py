"""Release tasks in the Capistrano / Twelve-Factor model: ``release``, ``rollback``, ``mark_bad``.

Layout under ``root`` (default ``/srv/<app>``)::

    releases/<V>/     the unpacked build, config rendered into it, REVISION, links to shared/
    shared/           data kept across releases (logs, uploads, ...)
    current           symlink to releases/<V>, switched atomically (link a temp name, rename)
    .cdlib/           releases.jsonl (log), bad/<V> (bad marks), deploy.lock

Every change happens under the app's deploy lock on the host; the lock is released in a
``finally``. A no-change run reads one batched fact and makes no other round trip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from cdlib.engine.errors import TaskFailed
from cdlib.engine.secrets import Secret
from cdlib.engine.task import HostContext, Plan, Prediction, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.release import ReleaseFact, ReleaseState, ReleaseVersionFact
from cdlib.release_install.build import BuildRefused, check_build
from cdlib.release_install.lock import LockOwner, deploy_lock, parse_owner
from cdlib.release_install.scripts import (
    CHECK_FAILED_EXIT,
    config_tar,
    install_script,
    mark_script,
    switch_script,
)
from cdlib.release_install.state import previous_good, to_prune

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"REVISION"}


def _lock_path(root: str) -> str:
    return f"{root}/.cdlib/deploy.lock"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _record(action: str, version: str, owner: LockOwner, **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "version": version,
        "time": _now(),
        "user": f"{owner.user}@{owner.host}",
        **extra,
    }


def _lock_note(state: ReleaseState, timeout: float) -> list[str]:
    """A line for check mode when another run holds the lock right now."""
    if state.lock is None:
        return []
    holder = parse_owner(state.lock)
    who = holder.describe() if holder else "another run"
    return [f"deploy lock held by {who}: a real run waits up to {timeout:g}s"]


def _check_rel(task: Task[Plan], value: str, option: str) -> None:
    parts = value.split("/")
    if value.startswith("/") or not value or any(p in ("", ".", "..") for p in parts):
        raise task.error(
            f"option {option!r}: {value!r} must be a relative path inside the release "
            "(no leading '/', no '..')"
        )


_sha_cache: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()


def _sha256_file(path: Path) -> str:
    """sha256 of a local file, cached by (path, size, mtime) for the process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _sha_lock:
        if key in _sha_cache:
            return _sha_cache[key]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _sha_lock:
        _sha_cache[key] = digest
    return digest


def env_file_content(env: Mapping[str, Any]) -> bytes:
    """``KEY='value'`` lines, sh-quoted so ``. file`` (or ``set -a; . file``) reads them back."""
    lines = []
    for k in sorted(env):
        v = env[k]
        text = v.reveal() if isinstance(v, Secret) else str(v)
        lines.append(f"{k}={shlex.quote(text)}\n")
    return "".join(lines).encode()


def _app_name(name: str, value: str) -> str | None:
    """:data:`~cdlib.engine.task.OptionCheck` of ``app``."""
    return None if _NAME_RE.match(value) else f"option {name!r}: {value!r} is not a valid name"


def _version_name(name: str, value: str) -> str | None:
    """:data:`~cdlib.engine.task.OptionCheck` of ``version``."""
    if _NAME_RE.match(value):
        return None
    return (
        f"option {name!r}: {value!r} must be letters, digits, '.', '_', '+', '-' (max 64, no '/')"
    )


@dataclass(kw_only=True)
class ReleasePlan(Plan):
    """A release plan: install or not, config files to write, switch, prune."""

    install: bool = False
    #: Config paths (inside the release) to write.
    write: list[str] = field(default_factory=list)
    switch: bool = False
    prune: list[str] = field(default_factory=list)
    #: The current version before the change.
    previous: str | None = None
    before: ReleaseState


@dataclass
class Release(Task[ReleasePlan]):
    """Install version ``version`` of ``app`` from a local build tarball and make it current.

    Options:
        app: the app's name (also the default root ``/srv/<app>``).
        version: the release name (``releases/<version>``); letters, digits, ``._+-``.
        build: local path of the build tarball (``.tar.gz``), relative to the playbook.
        root: the app's directory on the host.
        shared_dirs / shared_files: paths inside the release replaced by links to
            ``shared/<path>`` (created when missing; shared files start empty).
        templates: ``{template: path inside the release}``, rendered with the host's
            variables plus ``app``, ``version``, ``release_dir`` and ``root``.
        env: environment for the app, written to ``env_file`` in the release as sh-quoted
            ``KEY='value'`` lines (values may be :class:`~cdlib.Secret`).
        env_file: name of that file inside the release (default ``.env``).
        owner / group: owner of the release and of ``shared/`` (default: the login user).
        check_cmd: a command run inside the new release before the switch; when it fails
            the release is marked bad, ``current`` is not switched and the task fails.
        keep: releases kept after an install (the current and previous are always kept).
        lock_timeout: seconds to wait for another run's deploy lock before failing.

    A release is immutable: installing an existing version with a different build fails.
    A build whose symlinks point outside the release is refused before any host is touched
    (:mod:`cdlib.release_install.build`); nothing cdlib writes follows a symlink out of it.
    Config changes of an installed version are written into it (each file renamed over
    the old one) and count as a change, so handlers (restarts) run. Check mode reports:
    the install (with the build checksum), config files that would change, the switch of
    ``current`` (old -> new), releases that would be pruned, and a lock another run holds.

    Example:
        ```python
        play.task(tasks.release("shop", "1.4.0", "dist/shop-1.4.0.tar.gz", keep=5))
        ```
    """

    app: str = field(metadata=option(templated=True, check=_app_name))
    version: str = field(metadata=option(templated=True, check=_version_name))
    build: str = field(metadata=option(templated=True))
    root: str | None = field(default=None, metadata=option(templated=True, check=absolute_path))
    shared_dirs: list[str] | tuple[str, ...] = ()
    shared_files: list[str] | tuple[str, ...] = ()
    templates: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, object] = field(metadata=option(templated=True), default_factory=dict)
    env_file: str = ".env"
    owner: str | None = field(default=None, metadata=option(templated=True))
    group: str | None = field(default=None, metadata=option(templated=True))
    check_cmd: str | None = field(default=None, metadata=option(templated=True))
    keep: int = 5
    lock_timeout: float = 60.0
    _config: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)
    _sha256: str = field(default="", init=False, repr=False)
    _build_path: str = field(default="", init=False, repr=False)

    kind = "release"

    @property
    def app_root(self) -> str:
        """``root`` or ``/srv/<app>``."""
        return (self.root or f"/srv/{self.app}").rstrip("/")

    def validate(self) -> None:
        """Relative paths, keep >= 2 (``app``, ``version``, ``root``: option metadata)."""
        if self.keep < 2:
            raise self.error(
                f"option 'keep' must be at least 2 (current and previous), got {self.keep}"
            )
        if self.lock_timeout < 0:
            raise self.error("option 'lock_timeout' must be >= 0")
        for d in self.shared_dirs:
            _check_rel(self, d, "shared_dirs")
        for f in self.shared_files:
            _check_rel(self, f, "shared_files")
        for dest in self.templates.values():
            _check_rel(self, dest, "templates")
        _check_rel(self, self.env_file, "env_file")
        for k in self.env:
            if not _ENV_KEY_RE.match(k):
                raise self.error(f"option 'env': {k!r} is not a valid environment variable name")
        dests = [*self.templates.values(), *([self.env_file] if self.env else [])]
        clash = set(dests) & (set(self.shared_dirs) | set(self.shared_files) | _RESERVED)
        if len(set(dests)) != len(dests) or clash:
            raise self.error(f"option 'templates': config paths clash: {sorted(clash) or dests}")
        # A config file under a shared link would be written through it, outside the release.
        for dest in dests:
            for s in self._links():
                if dest.startswith(s + "/"):
                    raise self.error(
                        f"option 'templates': {dest!r} is inside shared path {s!r}, which is a "
                        "link out of the release; config files are written into the release"
                    )

    def describe(self) -> str:
        """``release app version``."""
        return f"release {self.app} {self.version}"

    def _config_paths(self) -> list[str]:
        return sorted([*self.templates.values(), *([self.env_file] if self.env else [])])

    def _links(self) -> list[str]:
        return [*self.shared_dirs, *self.shared_files]

    def _vfact(self) -> ReleaseVersionFact:
        return ReleaseVersionFact(self.app_root, self.version, self._config_paths(), self._links())

    def _merged(self, st: ReleaseState, vs: ReleaseState) -> ReleaseState:
        return dataclasses.replace(st, revision=vs.revision, files=vs.files, links=vs.links)

    def facts(self) -> list[Fact[object]]:
        """The app's release state with this version's config checksums."""
        return [ReleaseFact(self.app_root), self._vfact()]

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render options, templates and env file; checksum the build (local work only)."""
        t = super().prepare(variables, templar)
        build = Path(t.build)
        if not build.is_absolute():
            build = templar.search_path[0] / build
        try:
            sha = _sha256_file(build)
        except OSError as exc:
            raise self.error(f"cannot read build {str(build)!r}: {exc.strerror}") from None
        try:
            check_build(build, [*t._config_paths(), *t._links()])
        except BuildRefused as exc:
            raise self.error(f"build {str(build)!r} refused: {exc}") from None
        tvars = {
            **variables,
            "app": t.app,
            "version": t.version,
            "root": t.app_root,
            "release_dir": f"{t.app_root}/releases/{t.version}",
        }
        config: dict[str, bytes] = {}
        for src, dest in t.templates.items():
            config[dest] = templar.render_file(src, tvars).encode()
        if t.env:
            config[t.env_file] = env_file_content(t.env)
        t._config = config
        t._sha256 = sha
        t._build_path = str(build)
        return t

    def plan(self, ctx: HostContext) -> ReleasePlan:
        """Compare the host's releases with the asked version, build and config."""
        st = self._merged(ctx.fact(ReleaseFact(self.app_root)), ctx.fact(self._vfact()))
        return self._decide(st, note_lock=True)

    def _decide(self, st: ReleaseState, note_lock: bool = False) -> ReleasePlan:
        v = self.version
        rel = f"{self.app_root}/releases/{v}"
        installed = v in st.releases
        changes: list[str] = []
        write: list[str] = []
        if installed:
            rev = st.revision or {}
            have = rev.get("build_sha256")
            if have != self._sha256:
                raise TaskFailed(
                    f"release {v} of {self.app} is already installed at {rel} with build "
                    f"sha256 {have or 'unknown (no REVISION)'}, not {self._sha256}; releases are "
                    "immutable: build a new version"
                )
            if v in st.bad:
                raise TaskFailed(
                    f"release {v} of {self.app} is marked bad; use mark_bad({self.app!r}, "
                    f"{v!r}, bad=False) to allow it again, or install a new version"
                )
            for path, data in self._config.items():
                if st.files.get(path) != hashlib.sha256(data).hexdigest():
                    write.append(path)
            if write:
                changes.append(f"config {', '.join(write)}")
            wrong = [p for p in self._links() if st.links.get(p) != f"{self.app_root}/shared/{p}"]
            if wrong:
                changes.append(f"link shared {', '.join(wrong)}")
        else:
            changes.append(f"install {v} (build sha256 {self._sha256[:12]})")
            write = sorted(self._config)
        old = st.current_version
        switch = old != v
        prune: list[str] = []
        previous = old if switch else previous_good(st, v)
        if switch:
            changes.append(f"switch current {old or '(none)'} -> {v}")
        if not installed:
            prune = to_prune(st, self.keep, v, [p for p in (previous,) if p])
            if prune:
                changes.append(f"prune {', '.join(prune)}")
        if changes and note_lock:
            changes += _lock_note(st, self.lock_timeout)
        return ReleasePlan(
            changes=changes,
            affects=[self.app_root],
            install=not installed,
            write=write,
            switch=switch,
            prune=prune,
            previous=old,
            before=st,
            ok_msg=f"{v} current",
        )

    def predict(self, plan: ReleasePlan) -> list[Prediction] | None:
        """Check mode: the release installed and current, as later tasks would see it."""
        st = plan.before
        root, v = self.app_root, self.version
        releases = {k: t for k, t in st.releases.items() if k not in plan.prune}
        releases.setdefault(v, int(time.time()))
        log = [*st.log, {"action": "install", "version": v}] if plan.install else st.log
        base = dataclasses.replace(
            st,
            exists=True,
            current=f"{root}/releases/{v}",
            releases=releases,
            bad=frozenset(st.bad - set(plan.prune)),
            log=log,
            revision=None,
            files={},
            links={},
        )
        own = dataclasses.replace(
            base,
            revision={"version": v, "build_sha256": self._sha256},
            files={p: hashlib.sha256(b).hexdigest() for p, b in self._config.items()},
            links={p: f"{root}/shared/{p}" for p in self._links()},
        )
        return [(ReleaseFact(root), base), (self._vfact(), own)]

    def apply(self, ctx: HostContext, plan: ReleasePlan) -> str | None:
        """Take the lock, re-read the state, upload and install in one script, release."""
        root = self.app_root
        facts = [ReleaseFact(root), self._vfact()]
        with deploy_lock(ctx, self.app, _lock_path(root), self.lock_timeout, then=facts) as lock:
            owner = lock.owner
            # Another run may have changed the host while we waited: decide again on the
            # state read right after taking the lock.
            fresh = self._decide(self._merged(*lock.state))
            if not fresh.changes:
                plan.changes = []
                return f"{self.version} current (installed by another run meanwhile)"
            rec = {
                "install": _record("install", self.version, owner, build_sha256=self._sha256),
                "config": _record("config", self.version, owner, files=fresh.write),
                "activate": _record("activate", self.version, owner, previous=fresh.previous),
                "prune": _record("prune", self.version, owner, removed=fresh.prune),
                "bad": _record("bad", self.version, owner, reason="check_cmd failed"),
            }
            conf = config_tar({p: self._config[p] for p in fresh.write})
            script = (
                install_script(
                    root=root,
                    version=self.version,
                    sha256=self._sha256,
                    upload=fresh.install,
                    config_size=len(conf),
                    config_files=fresh.write,
                    shared_dirs=list(self.shared_dirs),
                    shared_files=list(self.shared_files),
                    owner=self.owner,
                    group=self.group,
                    check_cmd=self.check_cmd,
                    switch=fresh.switch,
                    prune=fresh.prune,
                    records=rec,
                )
                + f"\n{lock.release_snippet()}"
            )
            build = Path(self._build_path).read_bytes() if fresh.install else b""
            try:
                res = ctx.conn.run(script, stdin=conf + build)
            finally:
                ctx.facts.invalidate([root])
            lock.released = res.ok
            if res.exit_code == CHECK_FAILED_EXIT:
                raise TaskFailed(
                    f"check_cmd failed in release {self.version}; marked bad, current not "
                    f"switched: {res.stderr.strip()[-1000:]}"
                )
            if not res.ok:
                raise TaskFailed(
                    f"installing release {self.version} failed (exit {res.exit_code}): "
                    f"{(res.stderr or res.stdout).strip()[-1000:]}"
                )
            plan.changes = fresh.changes
        return None


@dataclass(kw_only=True)
class RollbackPlan(Plan):
    """A rollback plan: the release to switch to, from which, and the state found."""

    to: str | None = None
    previous: str | None = None
    before: ReleaseState


@dataclass
class Rollback(Task[RollbackPlan]):
    """Switch ``current`` back to the previous good release, or to release ``to``.

    Options: ``app``; ``to`` (a release name; default: the newest release installed before
    the current one that is not marked bad); ``root`` (default ``/srv/<app>``);
    ``mark_bad`` (also mark the release rolled back from as bad, so a re-run of the
    install does not bring it back); ``lock_timeout``. Fails clearly when there is no
    release to go back to or ``to`` is missing or bad. Check mode reports the switch
    (old -> new) and the bad mark.

    Example:
        ```python
        play.task(tasks.rollback("shop", to="1.3.0"))
        ```
    """

    app: str = field(metadata=option(templated=True))
    to: str | None = field(default=None, metadata=option(templated=True))
    root: str | None = field(default=None, metadata=option(templated=True))
    mark_bad: bool = False
    lock_timeout: float = 60.0

    kind = "rollback"

    @property
    def app_root(self) -> str:
        """``root`` or ``/srv/<app>``."""
        return (self.root or f"/srv/{self.app}").rstrip("/")

    def describe(self) -> str:
        """``rollback app [to V]``."""
        return f"rollback {self.app}" + (f" to {self.to}" if self.to else "")

    def facts(self) -> list[Fact[object]]:
        """The app's release state."""
        return [ReleaseFact(self.app_root)]

    def plan(self, ctx: HostContext) -> RollbackPlan:
        """Pick the target release."""
        return self._decide(ctx.fact(ReleaseFact(self.app_root)), ctx.host, note_lock=True)

    def _decide(self, st: ReleaseState, host: str, note_lock: bool = False) -> RollbackPlan:
        cur = st.current_version
        if self.to is not None:
            if self.to not in st.releases:
                have = ", ".join(sorted(st.releases)) or "none"
                raise TaskFailed(
                    f"cannot roll back {self.app} on {host} to {self.to}: not installed "
                    f"(installed: {have})"
                )
            if self.to in st.bad:
                raise TaskFailed(f"cannot roll back {self.app} to {self.to}: it is marked bad")
            target: str | None = self.to
        else:
            if cur is None:
                raise TaskFailed(f"cannot roll back {self.app} on {host}: no current release")
            target = previous_good(st, cur)
            if target is None:
                raise TaskFailed(
                    f"cannot roll back {self.app} on {host}: no good release before {cur} "
                    f"(bad: {', '.join(sorted(st.bad)) or 'none'})"
                )
        changes = []
        if target != cur:
            changes.append(f"switch current {cur or '(none)'} -> {target}")
            if self.mark_bad and cur:
                changes.append(f"mark {cur} bad")
            if note_lock:
                changes += _lock_note(st, self.lock_timeout)
        return RollbackPlan(
            changes=changes,
            affects=[self.app_root],
            to=target,
            previous=cur,
            before=st,
            ok_msg=f"{cur} current",
        )

    def predict(self, plan: RollbackPlan) -> list[Prediction] | None:
        """Check mode: ``current`` switched (and the old one marked bad when asked)."""
        st = plan.before
        to, frm = plan.to, plan.previous
        bad = st.bad | {frm} if self.mark_bad and frm else st.bad
        after = dataclasses.replace(
            st, current=f"{self.app_root}/releases/{to}", bad=frozenset(bad)
        )
        return [(ReleaseFact(self.app_root), after)]

    def apply(self, ctx: HostContext, plan: RollbackPlan) -> str | None:
        """Switch under the lock."""
        root = self.app_root
        facts = [ReleaseFact(root)]
        with deploy_lock(ctx, self.app, _lock_path(root), self.lock_timeout, then=facts) as lock:
            owner = lock.owner
            fresh = self._decide(lock.state[0], ctx.host)
            if not fresh.changes:
                plan.changes = []
                return None
            to, frm = fresh.to, fresh.previous
            assert to is not None  # a plan with changes has a target
            records = [_record("rollback", to, owner, previous=frm)]
            bad = frm if self.mark_bad and frm else None
            if bad:
                records.append(_record("bad", bad, owner, reason="rolled back"))
            try:
                ctx.run(
                    switch_script(root, to, records, mark_bad=bad) + "\n" + lock.release_snippet()
                )
                lock.released = True
            finally:
                ctx.facts.invalidate([root])
            plan.changes = fresh.changes
        return None


@dataclass(kw_only=True)
class MarkBadPlan(Plan):
    """A mark_bad plan: the version whose mark changes, and the state found."""

    version: str = ""
    before: ReleaseState | None = None


@dataclass
class MarkBad(Task[MarkBadPlan]):
    """Mark a release bad (rollback skips it, install refuses it) or good again.

    Options: ``app``; ``version`` (default: the current release); ``bad`` (``False``
    clears the mark); ``reason`` (kept in the release log); ``root``; ``lock_timeout``.
    Check mode reports the mark it would set or clear.

    Example:
        ```python
        play.task(tasks.mark_bad("shop", "1.4.0"))
        ```
    """

    app: str = field(metadata=option(templated=True))
    version: str | None = field(default=None, metadata=option(templated=True))
    bad: bool = True
    reason: str = field(default="", metadata=option(templated=True))
    root: str | None = field(default=None, metadata=option(templated=True))
    lock_timeout: float = 60.0

    kind = "mark_bad"

    @property
    def app_root(self) -> str:
        """``root`` or ``/srv/<app>``."""
        return (self.root or f"/srv/{self.app}").rstrip("/")

    def describe(self) -> str:
        """``mark_bad app V``."""
        word = "mark_bad" if self.bad else "mark_good"
        return f"{word} {self.app} {self.version or '(current)'}"

    def facts(self) -> list[Fact[object]]:
        """The app's release state."""
        return [ReleaseFact(self.app_root)]

    def plan(self, ctx: HostContext) -> MarkBadPlan:
        """Is the mark already as asked?"""
        st: ReleaseState = ctx.fact(ReleaseFact(self.app_root))
        v = self.version or st.current_version
        if v is None:
            raise TaskFailed(f"mark_bad {self.app}: no version given and no current release")
        if v not in st.releases:
            raise TaskFailed(f"mark_bad {self.app}: release {v} is not installed")
        if (v in st.bad) == self.bad:
            return MarkBadPlan(ok_msg=f"{v} already {'bad' if self.bad else 'good'}", version=v)
        return MarkBadPlan(
            changes=[f"mark {v} {'bad' if self.bad else 'good'}"],
            affects=[self.app_root],
            version=v,
            before=st,
        )

    def predict(self, plan: MarkBadPlan) -> list[Prediction] | None:
        """Check mode: later rollbacks in the run see the mark."""
        st = plan.before
        if st is None:
            return None
        bad = st.bad | {plan.version} if self.bad else st.bad - {plan.version}
        return [(ReleaseFact(self.app_root), dataclasses.replace(st, bad=frozenset(bad)))]

    def apply(self, ctx: HostContext, plan: MarkBadPlan) -> str | None:
        """Set or clear the mark under the lock."""
        root = self.app_root
        v = plan.version
        with deploy_lock(ctx, self.app, _lock_path(root), self.lock_timeout) as lock:
            rec = _record("bad" if self.bad else "good", v, lock.owner, reason=self.reason)
            try:
                ctx.run(mark_script(root, v, self.bad, rec) + "\n" + lock.release_snippet())
                lock.released = True
            finally:
                ctx.facts.invalidate([root])
        return None


#: Lowercase aliases, as playbooks usually spell tasks.
release = Release
rollback = Rollback
mark_bad = MarkBad
