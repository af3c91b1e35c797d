"""Jinja2 rendering with StrictUndefined and errors that name template, line and variable.

The environment is the sandboxed one of :mod:`cdlib.jinja_sandbox`: a template that
reaches for Python internals fails with a clear error instead of running code here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.meta

from cdlib.engine.secrets import Secret
from cdlib.errors import EXIT_BAD_INPUT, CdlibError
from cdlib.jinja_sandbox import SecurityError, refusal, sandboxed_environment

_UNDEF = re.compile(r"'([^']+)' is undefined")


class TemplateError(CdlibError):
    """A template failed to render; ``where`` is ``template:line`` when known."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, template: str, line: int | None, message: str) -> None:
        self.template = template
        self.line = line
        self.reason = message
        where = f"{template}:{line}" if line else template
        super().__init__(f"template {where}: {message}")


def _finalize(value: Any) -> Any:
    # Secrets render to their real value in content sent to hosts; the Redactor
    # masks that value again wherever content is shown.
    if isinstance(value, Secret):
        return value.reveal()
    return value


def is_template(text: str) -> bool:
    """Whether ``text`` holds jinja2 syntax (``{{ }}`` or ``{% %}``): the one definition
    used to decide what is rendered per host and what static validation leaves for later."""
    return "{{" in text or "{%" in text


class Templar:
    """Renders strings and template files for one playbook directory."""

    def __init__(self, search_path: list[Path] | None = None) -> None:
        self.search_path = search_path or [Path.cwd()]
        self._env = sandboxed_environment(
            loader=jinja2.FileSystemLoader([str(p) for p in self.search_path]),
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        self._lock = threading.Lock()
        self._cache: dict[str, jinja2.Template] = {}

    def is_template(self, text: str) -> bool:
        """Whether ``text`` holds jinja2 syntax worth rendering (:func:`is_template`)."""
        return is_template(text)

    def render_string(self, text: str, variables: Mapping[str, Any], *, what: str) -> str:
        """Render an option value; ``what`` names it in errors (``option 'dest'``)."""
        if not self.is_template(text):
            return text
        try:
            with self._lock:
                tpl = self._cache.get(text)
                if tpl is None:
                    tpl = self._cache[text] = self._env.from_string(text)
            return tpl.render(**variables)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(what, None, f"syntax error: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateError(what, None, refusal(exc)) from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(what, None, _undefined_message(exc)) from None
        except Exception as exc:
            raise TemplateError(what, None, f"{type(exc).__name__}: {exc}") from None

    def names(self, text: str) -> frozenset[str]:
        """The variables a template string reads (none for plain text; syntax errors: none,
        rendering reports them)."""
        if not self.is_template(text):
            return frozenset()
        try:
            with self._lock:
                ast = self._env.parse(text)
        except jinja2.TemplateSyntaxError:
            return frozenset()
        return frozenset(jinja2.meta.find_undeclared_variables(ast))

    def render_file(self, name: str, variables: Mapping[str, Any]) -> str:
        """Render template file ``name`` (looked up on the search path)."""
        try:
            with self._lock:
                tpl = self._env.get_template(name)
            return tpl.render(**variables)
        except jinja2.TemplateNotFound:
            where = ", ".join(str(p) for p in self.search_path)
            raise TemplateError(name, None, f"template not found (searched {where})") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                exc.filename or name, exc.lineno, f"syntax error: {exc.message}"
            ) from None
        except SecurityError as exc:
            line = _template_line(exc.__traceback__, name)
            raise TemplateError(_path_of(self, name), line, refusal(exc)) from None
        except jinja2.UndefinedError as exc:
            line = _template_line(exc.__traceback__, name)
            raise TemplateError(_path_of(self, name), line, _undefined_message(exc)) from None
        except Exception as exc:
            line = _template_line(exc.__traceback__, name)
            raise TemplateError(
                _path_of(self, name), line, f"{type(exc).__name__}: {exc}"
            ) from None


def _undefined_message(exc: jinja2.UndefinedError) -> str:
    m = _UNDEF.search(str(exc.message))
    if m:
        return f"undefined variable {m.group(1)!r}"
    return f"undefined: {exc.message}"


def _path_of(templar: Templar, name: str) -> str:
    for base in templar.search_path:
        p = base / name
        if p.exists():
            return str(p)
    return name


def _template_line(tb: TracebackType | None, name: str) -> int | None:
    """Line in the template from jinja2's rewritten traceback frames."""
    line = None
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if fname.endswith(name) or fname == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
