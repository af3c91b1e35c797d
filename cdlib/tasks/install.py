"""The install task (Capistrano / Twelve-Factor model): a build made the app's current release.

The app's layout on the host is :class:`cdlib.install.layout.AppLayout`. Every change
happens under the app's deploy lock on the host; the lock is released in a ``finally``.
A no-change run reads one batched fact and makes no other round trip. Switching back and
bad marks are :mod:`cdlib.tasks.install_rollback` and :mod:`cdlib.tasks.mark_bad`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import re
import shlex
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
from cdlib.facts.files import PathFact
from cdlib.facts.release import ReleaseFact, ReleaseState, ReleaseVersionFact
from cdlib.install.build import BuildRefused, check_build
from cdlib.install.layout import AppLayout, lock_note, log_record
from cdlib.install.lock import deploy_lock
from cdlib.install.scripts import CHECK_FAILED_EXIT, config_tar, install_script
from cdlib.install.state import previous_good, to_prune
from cdlib.tasks._local import file_sha256, local_path
from cdlib.tasks.files import content_diff

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"REVISION"}


def _check_rel(task: Task[Plan], value: str, option: str) -> None:
    parts = value.split("/")
    if value.startswith("/") or not value or any(p in ("", ".", "..") for p in parts):
        raise task.error(
            f"option {option!r}: {value!r} must be a relative path inside the release "
            "(no leading '/', no '..')"
        )


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
class InstallPlan(Plan):
    """An install plan: install or not, config files to write, switch, prune."""

    install: bool = False
    #: Config paths (inside the release) to write.
    write: list[str] = field(default_factory=list)
    switch: bool = False
    prune: list[str] = field(default_factory=list)
    #: The current version before the change.
    previous: str | None = None
    before: ReleaseState


@dataclass
class Install(Task[InstallPlan]):
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
        strip_components: leading path components removed from every member of the
            build when it is unpacked (``tar --strip-components``). The default, 0,
            unpacks the build as it is: a tarball of one directory ``app-1.4.0/`` puts
            the app in ``releases/<version>/app-1.4.0/``; the install's change message
            then says so, and ``strip_components=1`` puts its content at the top.

    A release is immutable: installing an existing version with a different build fails.
    A build whose symlinks point outside the release is refused before any host is touched
    (:mod:`cdlib.install.build`); nothing cdlib writes follows a symlink out of it.
    Config changes of an installed version are written into it (each file renamed over
    the old one) and count as a change, so handlers (restarts) run. Check mode reports:
    the install (with the build checksum), config files that would change, the switch of
    ``current`` (old -> new), releases that would be pruned, and a lock another run holds.

    Example:
        ```python
        play.task(tasks.install("shop", "1.4.0", "dist/shop-1.4.0.tar.gz", keep=5))
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
    strip_components: int = 0
    _config: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)
    _wrapper: tuple[int, str] = field(default=(0, ""), init=False, repr=False)
    _sha256: str = field(default="", init=False, repr=False)
    _build_path: str = field(default="", init=False, repr=False)

    kind = "install"

    @property
    def layout(self) -> AppLayout:
        """Where the app lives on the host."""
        return AppLayout.of(self.app, self.root)

    @property
    def app_root(self) -> str:
        """``root`` or ``/srv/<app>``."""
        return self.layout.root

    def validate(self) -> None:
        """Relative paths, keep >= 2 (``app``, ``version``, ``root``: option metadata)."""
        if self.keep < 2:
            raise self.error(
                f"option 'keep' must be at least 2 (current and previous), got {self.keep}"
            )
        if self.lock_timeout < 0:
            raise self.error("option 'lock_timeout' must be >= 0")
        if self.strip_components < 0:
            raise self.error(f"option 'strip_components' must be >= 0, got {self.strip_components}")
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
        """``install app version`` (``release app version`` under the old name)."""
        return f"{self.kind} {self.app} {self.version}"

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
        build = local_path(templar, t.build)
        try:
            sha, _ = file_sha256(build)
        except OSError as exc:
            raise self.error(f"cannot read build {str(build)!r}: {exc.strerror}") from None
        try:
            t._wrapper = check_build(build, [*t._config_paths(), *t._links()], t.strip_components)
        except BuildRefused as exc:
            raise self.error(f"build {str(build)!r} refused: {exc}") from None
        tvars = {
            **variables,
            "app": t.app,
            "version": t.version,
            "root": t.app_root,
            "release_dir": t.layout.release_dir(t.version),
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

    def plan(self, ctx: HostContext) -> InstallPlan:
        """Compare the host's releases with the asked version, build and config."""
        st = self._merged(ctx.fact(ReleaseFact(self.app_root)), ctx.fact(self._vfact()))
        plan = self._decide(st, note_lock=True)
        plan.diff = self._config_diff(ctx, st, plan.write)
        return plan

    def _config_diff(self, ctx: HostContext, st: ReleaseState, write: list[str]) -> str | None:
        """``--diff``: each config file to write against the one it replaces.

        That is the file in this release when it is installed, else the same file in the
        current release (what the app reads until the switch). Secrets are masked by the
        run's redactor, which learns the ``env`` values given as :class:`~cdlib.Secret`.
        """
        if not ctx.diff or not write:
            return None
        for v in self.env.values():
            if isinstance(v, Secret):
                ctx.redact.add_secret(v)
        from_version = self.version if self.version in st.releases else st.current_version
        base = self.layout.release_dir(from_version) if from_version else None
        new_dir = self.layout.release_dir(self.version)
        out: list[str] = []
        for path in write:
            old: bytes | None = None
            if base is not None:
                found = ctx.fact(PathFact(posixpath.join(base, path)))
                if found.kind == "file" and found.content is None:
                    out.append(f"content of {new_dir}/{path} differs (too large to diff)\n")
                    continue
                old = found.content if found.kind == "file" else None
            d = content_diff(old, self._config[path], f"{new_dir}/{path}", ctx)
            if d:
                out.append(d)
        return "".join(out) or None

    def _decide(self, st: ReleaseState, note_lock: bool = False) -> InstallPlan:
        v = self.version
        rel = self.layout.release_dir(v)
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
            wrong = [p for p in self._links() if st.links.get(p) != self.layout.shared(p)]
            if wrong:
                changes.append(f"link shared {', '.join(wrong)}")
        else:
            note = ""
            depth, top = self._wrapper
            if depth:
                note = (
                    f"; everything in it is under {top}/: "
                    f"strip_components={self.strip_components + depth} unpacks it at the top"
                )
            changes.append(f"install {v} (build sha256 {self._sha256[:12]}{note})")
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
            changes += lock_note(st, self.lock_timeout)
        return InstallPlan(
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

    def predict(self, plan: InstallPlan) -> list[Prediction] | None:
        """Check mode: the release installed and current, as later tasks would see it."""
        st = plan.before
        root, v = self.app_root, self.version
        releases = {k: t for k, t in st.releases.items() if k not in plan.prune}
        releases.setdefault(v, int(time.time()))
        log = [*st.log, {"action": "install", "version": v}] if plan.install else st.log
        base = dataclasses.replace(
            st,
            exists=True,
            current=self.layout.release_dir(v),
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
            links={p: self.layout.shared(p) for p in self._links()},
        )
        return [(ReleaseFact(root), base), (self._vfact(), own)]

    def apply(self, ctx: HostContext, plan: InstallPlan) -> str | None:
        """Take the lock, re-read the state, upload and install in one script, release."""
        root = self.app_root
        facts = [ReleaseFact(root), self._vfact()]
        with deploy_lock(
            ctx, self.app, self.layout.lock_path, self.lock_timeout, then=facts
        ) as lock:
            owner = lock.owner
            # Another run may have changed the host while we waited: decide again on the
            # state read right after taking the lock.
            fresh = self._decide(self._merged(*lock.state))
            if not fresh.changes:
                plan.changes = []
                return f"{self.version} current (installed by another run meanwhile)"
            rec = {
                "install": log_record("install", self.version, owner, build_sha256=self._sha256),
                "config": log_record("config", self.version, owner, files=fresh.write),
                "activate": log_record("activate", self.version, owner, previous=fresh.previous),
                "prune": log_record("prune", self.version, owner, removed=fresh.prune),
                "bad": log_record("bad", self.version, owner, reason="check_cmd failed"),
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
                    strip_components=self.strip_components,
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


class Release(Install):
    """Deprecated alias of :class:`Install` (``tasks.release``): use ``tasks.install``.

    Kept so playbooks written for cdlib before the rename still run unchanged; its
    task kind and label stay ``release``. Options and check mode are those of
    :class:`Install`.

    Example:
        ```python
        play.task(tasks.release("shop", "1.4.0", "dist/shop-1.4.0.tar.gz"))  # deprecated
        ```
    """

    kind = "release"


#: Lowercase aliases, as playbooks usually spell tasks. ``release`` is the deprecated
#: spelling of ``install``.
install = Install
release = Release
