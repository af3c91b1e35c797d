"""``pip``: Python packages in a virtualenv, from a requirements file, specs or a wheel.

What is installed comes from the venv's ``*.dist-info`` directories in the batched
fact read (the same data ``pip freeze`` reports, without starting pip).
The requirements file is kept in the venv (``.cdlib-requirements.txt``): when its
checksum is unchanged and its pinned packages are installed, pip is not called.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cdlib.connections.shell import q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Prediction, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import CONTENT_LIMIT, FileState, PathFact
from cdlib.facts.pip import VenvFact, VenvState, canonical_name
from cdlib.tasks._local import local_path

#: Where the venv keeps the requirements file it was last installed from.
REQUIREMENTS_COPY = ".cdlib-requirements.txt"
_SPEC = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:(==|>=|<=|~=|!=|>|<)\s*([^\s;,#]+))?"
)
_WHEEL = re.compile(r"^([A-Za-z0-9_.]+)-([A-Za-z0-9_.!+]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def parse_spec(spec: str) -> tuple[str, str | None] | None:
    """``name==1.0`` -> (``name``, ``1.0``); ``name`` / ``name>=1`` -> (``name``, None).

    None for lines this check cannot judge (options, URLs, paths, comments): those are
    covered by the requirements file's checksum instead.
    """
    text = spec.split("#", 1)[0].strip()
    if not text or text.startswith("-") or "://" in text or "/" in text or " @ " in text:
        return None
    m = _SPEC.match(text)
    if not m:
        return None
    return canonical_name(m.group(1)), m.group(3) if m.group(2) == "==" else None


def wheel_name_version(filename: str) -> tuple[str, str]:
    """Project name and version from a wheel file name (PEP 427)."""
    m = _WHEEL.match(filename)
    if not m:
        raise ValueError(f"{filename!r} is not a wheel file name (name-version-...-tag.whl)")
    return canonical_name(m.group(1)), m.group(2)


def same_version(a: str, b: str) -> bool:
    """Equal versions up to trailing ``.0`` release parts (``1.0`` == ``1.0.0``)."""

    def norm(v: str) -> str:
        parts = v.strip().lower().split(".")
        while len(parts) > 1 and parts[-1] == "0":
            parts.pop()
        return ".".join(parts)

    return norm(a) == norm(b)


def unmet(specs: list[str], installed: Mapping[str, str]) -> list[str]:
    """The specs (of those :func:`parse_spec` can judge) that ``installed`` does not meet."""
    out = []
    for s in specs:
        parsed = parse_spec(s)
        if parsed is None:
            continue
        name, version = parsed
        if name not in installed or (
            version is not None and not same_version(installed[name], version)
        ):
            out.append(s.strip())
    return out


@dataclass(kw_only=True)
class PipPlan(Plan):
    """The venv as read, and which install steps the plan takes."""

    found: VenvState
    requirements: bool = False
    packages: list[str] = field(default_factory=list)
    wheel: bool = False


@dataclass
class Pip(Task[PipPlan]):
    """Install Python packages into a virtualenv (created when missing).

    Options: ``venv`` (absolute path on the host); ``requirements`` (local requirements
    file, relative to the playbook; rendered with jinja2 when it holds ``{{``); ``packages``
    (specs such as ``"requests==2.32.3"``); ``wheel`` (a local ``.whl`` file to upload and
    install); ``python`` (interpreter that creates the venv, default ``python3``);
    ``extra_args`` (passed to ``pip install``, e.g. ``["--no-index", "--find-links",
    "/srv/wheels"]``). pip runs only when something is missing or differs: a spec
    that is not installed (or at another ``==`` version), a wheel whose version is not
    installed, or a requirements file whose checksum differs from the copy kept in the
    venv. Check mode reports ``create venv``, ``install <specs>``, ``install wheel <file>``,
    ``install requirements (...)``.

    Example:
        ```python
        play.task(tasks.pip("/srv/app/venv", requirements="requirements.txt"))
        ```
    """

    venv: str = field(metadata=option(templated=True, check=absolute_path))
    requirements: str | None = field(default=None, metadata=option(templated=True))
    packages: tuple[str, ...] | list[str] = field(default=(), metadata=option(templated=True))
    wheel: str | None = field(default=None, metadata=option(templated=True))
    python: str = field(default="python3", metadata=option(templated=True))
    extra_args: tuple[str, ...] | list[str] = field(default=(), metadata=option(templated=True))

    kind = "pip"

    _req: bytes | None = field(default=None, init=False, repr=False)
    _wheel: Path | None = field(default=None, init=False, repr=False)

    def validate(self) -> None:
        """Something to install; absolute venv."""
        self.packages = tuple(self.packages)
        self.extra_args = tuple(self.extra_args)
        if not (self.requirements or self.packages or self.wheel):
            raise self.error("give 'requirements', 'packages' or 'wheel'")

    def describe(self) -> str:
        """``pip into venv``."""
        what = self.requirements or self.wheel or ", ".join(self.packages)
        return f"pip {what} -> {self.venv}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Read (and render) the requirements file and find the wheel, before any host."""
        t = super().prepare(variables, templar)  # checks the rendered venv path too
        if t.requirements:
            path = local_path(templar, t.requirements)
            try:
                text = path.read_text()
            except OSError as exc:
                raise t.error(f"cannot read requirements {str(path)!r}: {exc.strerror}") from None
            text = templar.render_string(text, variables, what=f"requirements {path.name}")
            t._req = text.encode()
        if t.wheel:
            path = local_path(templar, t.wheel)
            try:
                wheel_name_version(path.name)
            except ValueError as exc:
                raise t.error(str(exc)) from None
            if not path.is_file():
                raise t.error(f"wheel {str(path)!r} is not a readable file")
            t._wheel = path
        return t

    @property
    def _venv(self) -> str:
        return self.venv.rstrip("/")

    def facts(self) -> list[Fact[object]]:
        """Installed distributions and the kept requirements copy."""
        return [VenvFact(self._venv), PathFact(posixpath.join(self._venv, REQUIREMENTS_COPY))]

    def plan(self, ctx: HostContext) -> PipPlan:
        """Decide what to install from the installed versions and checksums."""
        venv: VenvState = ctx.fact(VenvFact(self._venv))
        kept: FileState = ctx.fact(PathFact(posixpath.join(self._venv, REQUIREMENTS_COPY)))
        installed = venv.packages
        changes: list[str] = []
        if not venv.exists:
            changes.append(f"create venv {self._venv}")
        req = False
        if self._req is not None:
            missing = unmet(self._req.decode().splitlines(), installed)
            if missing:
                changes.append(f"install requirements ({', '.join(missing)} missing)")
                req = True
            elif kept.sha256 != hashlib.sha256(self._req).hexdigest():
                changes.append("install requirements (file changed)")
                req = True
        pkgs = unmet(list(self.packages), installed)
        # Specs this check cannot judge are installed when the venv is created only.
        if not venv.exists:
            pkgs = list(self.packages)
        if pkgs:
            changes.append(f"install {' '.join(pkgs)}")
        wheel = False
        if self._wheel is not None:
            name, version = wheel_name_version(self._wheel.name)
            if name not in installed or not same_version(installed[name], version):
                changes.append(f"install wheel {self._wheel.name}")
                wheel = True
        return PipPlan(
            changes=changes,
            affects=[self._venv],
            found=venv,
            requirements=req,
            packages=pkgs,
            wheel=wheel,
            ok_msg=f"{len(installed)} packages in place",
        )

    def predict(self, plan: PipPlan) -> list[Prediction] | None:
        """The venv afterwards: what the specs, requirements and wheel name get installed."""
        venv = plan.found
        packages = dict(venv.packages)
        specs = list(self.packages)
        if self._req is not None:
            specs += self._req.decode().splitlines()
        for spec in specs:
            parsed = parse_spec(spec)
            if parsed is not None:
                packages.setdefault(parsed[0], "")
                if parsed[1] is not None:
                    packages[parsed[0]] = parsed[1]
        if self._wheel is not None:
            name, version = wheel_name_version(self._wheel.name)
            packages[name] = version
        out: list[Prediction] = [(VenvFact(self._venv), VenvState(True, packages))]
        if self._req is not None:
            kept = FileState(
                "file",
                size=len(self._req),
                sha256=hashlib.sha256(self._req).hexdigest(),
                content=self._req if len(self._req) <= CONTENT_LIMIT else None,
            )
            out.append((PathFact(posixpath.join(self._venv, REQUIREMENTS_COPY)), kept))
        return out

    def apply(self, ctx: HostContext, plan: PipPlan) -> str | None:
        """One command (after a wheel upload): venv, requirements, specs, wheel."""
        exists, req, pkgs, wheel = plan.found.exists, plan.requirements, plan.packages, plan.wheel
        py = q(self._venv + "/bin/python")
        pip = f"{py} -m pip install -q --disable-pip-version-check " + " ".join(
            q(a) for a in self.extra_args
        )
        up = f"/tmp/.cdlib-wheel-{secrets.token_hex(6)}"
        tmp = posixpath.join(self._venv, f".cdlib-requirements.{secrets.token_hex(6)}")
        # Variables first, so the trap cleans whatever exists when anything fails.
        steps = [
            "set -e",
            f"r={q(tmp)}; up={q(up)}; wd=",
            """trap 'rm -f "$r" "$up"; [ -z "$wd" ] || rm -rf "$wd"' EXIT""",
        ]
        if not exists:
            steps.append(f"{q(self.python)} -m venv {q(self._venv)}")
        # One pip run for everything: pip starts slowly and resolves better all at once.
        targets: list[str] = []
        stdin = None
        if req:
            steps.append('cat > "$r"')
            targets.append('-r "$r"')
            stdin = self._req
        targets += [q(p) for p in pkgs]
        if wheel:
            assert self._wheel is not None
            ctx.conn.put(self._wheel.read_bytes(), up)
            steps += ["wd=$(mktemp -d)", f'mv -f -- "$up" "$wd"/{q(self._wheel.name)}']
            targets.append(f'"$wd"/{q(self._wheel.name)}')
        steps.append(f"{pip} " + " ".join(targets))
        if req:
            steps.append(f'mv -f -- "$r" {q(posixpath.join(self._venv, REQUIREMENTS_COPY))}')
        res = ctx.run("\n".join(steps), stdin=stdin, check=False, timeout=1800)
        if not res.ok:
            detail = (res.stderr.strip() or res.stdout.strip())[-2000:]
            raise TaskFailed(f"pip failed (exit {res.exit_code}): {detail}")
        return None


#: Lowercase alias, as playbooks usually spell tasks.
pip = Pip
