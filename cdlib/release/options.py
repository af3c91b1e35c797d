"""Strategy options from variables: every string option is a template, rendered per run.

A strategy's string options (``version="{{ version }}"``, ``environment="{{ env }}"``,
the strings of its router spec, its ``groups`` and ``metadata`` values) are rendered
with the one sandboxed templating (:mod:`cdlib.engine.templating`) before the strategy
is validated. The variables, later ones winning:

1. the inventory's ``all`` group vars;
2. the strategy's own ``vars`` (as a play's vars);
3. the run's extra vars (``-e``);

and ``lookup('env', 'NAME')`` reads an environment variable of the control machine
(``lookup('env', 'NAME', default='x')`` when it may be unset; unset without a default
is an error, never an empty string).

Rendering goes into a per-run copy: the user's strategy object keeps its templates, so
running it twice with different ``-e`` values releases each. An undefined variable, a
value that still holds a template after rendering, or a value that would carry a
:class:`~cdlib.Secret` into the release record is a :class:`PlaybookError` naming the
strategy's file and line (exit 4) before anything is touched.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from cdlib.engine.errors import Origin, PlaybookError
from cdlib.engine.secrets import Redactor, Secret
from cdlib.engine.templating import Templar, TemplateError, is_template
from cdlib.inventory.model import Inventory


class Renderable(Protocol):
    """What :func:`render_options` reads and writes: a strategy's dataclass of options."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    app: str
    origin: Origin
    metadata: Mapping[str, Any]


_S = TypeVar("_S", bound=Renderable)

#: Options never rendered: inputs to rendering, or not options at all.
_SKIP = frozenset({"origin", "vars"})
_META_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NO_DEFAULT = object()


def lookup(kind: str, name: str, default: Any = _NO_DEFAULT) -> Any:
    """``lookup('env', 'NAME'[, default=...])`` in strategy options: an environment variable."""
    if kind != "env":
        raise ValueError(f"lookup({kind!r}, ...): only lookup('env', NAME) is available here")
    value = os.environ.get(str(name))
    if value is None:
        if default is _NO_DEFAULT:
            raise ValueError(
                f"environment variable {name} is not set (lookup('env', {name!r}, "
                "default=...) gives a default)"
            )
        return default
    return value


def option_vars(
    inventory: Inventory, strategy_vars: Mapping[str, Any], extra_vars: Mapping[str, Any]
) -> dict[str, Any]:
    """The variables strategy options are rendered with (see the module's docstring)."""
    group = inventory.groups.get("all")
    out: dict[str, Any] = dict(group.vars) if group is not None else {}
    out.update(strategy_vars)
    out.update(extra_vars)
    out["lookup"] = lookup
    return out


def secrets_of(inventory: Inventory, *sources: Mapping[str, Any]) -> Redactor:
    """A redactor knowing every :class:`Secret` of the inventory and of ``sources``."""
    red = Redactor()
    for group in inventory.groups.values():
        red.collect(group.vars)
    for h in inventory.hosts.values():
        red.collect(h.vars)
    for src in sources:
        red.collect(src)
    return red


class _Renderer:
    def __init__(self, s: Renderable, variables: Mapping[str, Any], secrets: Redactor) -> None:
        self.s = s
        self.vars = variables
        self.secrets = secrets
        self.templar = Templar()
        self.errors: list[PlaybookError] = []

    def error(self, what: str, why: str) -> None:
        self.errors.append(
            PlaybookError(f"release {self.s.app}: {what}: {why}", origin=self.s.origin)
        )

    def text(self, what: str, value: str) -> str:
        try:
            out = self.templar.render_string(value, self.vars, what=what)
        except TemplateError as exc:
            self.error(what, exc.reason)
            return value
        if is_template(out):
            self.error(what, f"still holds a template after rendering: {out!r}")
        elif self.secrets(out) != out:
            self.error(what, "would carry a secret into the release record; secrets stay out")
        return out

    def mapping(self, what: str, value: Mapping[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(v, Secret):
                self.error(f"{what} {k!r}", "is a Secret; secrets stay out of release records")
                out[k] = v
            else:
                out[k] = self.text(f"{what} {k!r}", v) if isinstance(v, str) else v
        return out

    def spec(self, value: Any) -> Any:
        if not dataclasses.is_dataclass(value):
            return value
        changes = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.init and isinstance(v, str) and is_template(v):
                changes[f.name] = self.text(f"router option {f.name!r}", v)
        if not changes:
            return value
        out = copy.copy(value)
        for k, v in changes.items():
            object.__setattr__(out, k, v)
        return out


def render_options(
    s: _S,
    variables: Mapping[str, Any],
    secrets: Redactor,
    run_metadata: Mapping[str, str],
) -> tuple[_S, list[PlaybookError]]:
    """A per-run copy of ``s`` with every string option rendered; the errors found."""
    from cdlib.release.routers import RouterSpec

    r = _Renderer(s, variables, secrets)
    out = copy.copy(s)
    for f in dataclasses.fields(s):
        if not f.init or f.name in _SKIP:
            continue
        value = getattr(s, f.name)
        if isinstance(value, str):
            setattr(out, f.name, r.text(f"option {f.name!r}", value))
        elif f.name == "groups" and isinstance(value, Mapping):
            setattr(out, f.name, r.mapping(f"option {f.name!r}", value))
        elif isinstance(value, RouterSpec):
            setattr(out, f.name, r.spec(value))
    for name in ("environment", "build", "require_released_in"):
        # An option rendered to nothing is not set: ``"{{ promote_from | default('') }}"``.
        if getattr(out, name) == "":
            setattr(out, name, None)
    # ``cdlib run --meta`` wins over the playbook's metadata, and is data, not a template.
    out.metadata = {**_metadata(r, s.metadata, True), **_metadata(r, run_metadata, False)}
    return out, r.errors


def _metadata(r: _Renderer, meta: Mapping[Any, Any], render: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in meta.items():
        if not isinstance(k, str) or not _META_KEY.match(k):
            r.error(f"metadata key {k!r}", "use letters, digits, '.', '_' and '-' (at most 64)")
        elif isinstance(v, Secret):
            r.error(f"metadata {k!r}", "is a Secret; secrets stay out of release records")
        elif not isinstance(v, str | int | float | bool):
            r.error(f"metadata {k!r}", f"must be a string, got {type(v).__name__}")
        elif render and isinstance(v, str):
            out[k] = r.text(f"metadata {k!r}", v)
        elif r.secrets(str(v)) != str(v):
            r.error(f"metadata {k!r}", "holds a secret value; secrets stay out of records")
        else:
            out[k] = str(v)
    return out
