"""The one place cdlib creates a Jinja2 environment: always sandboxed, always strict.

Templates come from users (task options, template files, smoke suites, inventory
``compose`` expressions), so none may reach Python internals: the environment is
Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, which refuses
attributes such as ``__class__`` or ``__globals__`` and methods that change a value
(``list.append``), so one host's template cannot change another host's variables.
Every module renders through :func:`sandboxed_environment`; a test fails when another
module builds an environment of its own. This module sits at the bottom of the
package (it imports nothing from cdlib), so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import BaseLoader, StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["SecurityError", "refusal", "sandboxed_environment"]


def sandboxed_environment(
    *,
    loader: BaseLoader | None = None,
    finalize: Callable[[Any], Any] | None = None,
    keep_trailing_newline: bool = False,
) -> ImmutableSandboxedEnvironment:
    """A new sandboxed environment with ``StrictUndefined`` and no autoescaping."""
    return ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        finalize=finalize,
        keep_trailing_newline=keep_trailing_newline,
        autoescape=False,
    )


def refusal(exc: SecurityError) -> str:
    """The message for a template the sandbox refused (without the template's values)."""
    return f"refused by the template sandbox: {exc}"
