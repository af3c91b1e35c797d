"""The one place cdlib creates a Jinja2 environment: always sandboxed, always strict.

Templates come from users (task options, template files, smoke suites, inventory
``compose`` expressions), so none may reach Python internals: the environment is
Jinja2's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, which refuses
attributes such as ``__class__`` or ``__globals__`` and methods that change a value
(``list.append``), so one host's template cannot change another host's variables.
Every module renders through :func:`sandboxed_environment`; a test fails when another
module builds an environment of its own. Each environment has Ansible's common filters
and tests (:mod:`cdlib.jinja_filters`), the ``omit`` global, and whatever filters and
tests a playbook registered with :func:`register_filter` / :func:`register_test`. This
module sits at the bottom of the package (it imports only bottom modules), so every
layer may use it.
"""

from __future__ import annotations

import keyword
import threading
import weakref
from collections.abc import Callable
from typing import Any

from jinja2 import BaseLoader, StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cdlib.jinja_filters import FILTERS, OMIT, TESTS

__all__ = [
    "SecurityError",
    "refusal",
    "register_filter",
    "register_test",
    "sandboxed_environment",
]

_user_filters: dict[str, Callable[..., Any]] = {}
_user_tests: dict[str, Callable[..., Any]] = {}
_environments: weakref.WeakSet[ImmutableSandboxedEnvironment] = weakref.WeakSet()
_lock = threading.Lock()


def sandboxed_environment(
    *,
    loader: BaseLoader | None = None,
    finalize: Callable[[Any], Any] | None = None,
    keep_trailing_newline: bool = False,
) -> ImmutableSandboxedEnvironment:
    """A new sandboxed environment with ``StrictUndefined`` and no autoescaping."""
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        finalize=finalize,
        keep_trailing_newline=keep_trailing_newline,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    env.globals["omit"] = OMIT
    with _lock:
        env.filters.update(_user_filters)
        env.tests.update(_user_tests)
        _environments.add(env)
    return env


def _check_name(kind: str, name: str, func: Callable[..., Any]) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"{kind} name {name!r} must be a Python identifier")
    if not callable(func):
        raise TypeError(f"{kind} {name!r} must be a function")


def register_filter(name: str, func: Callable[..., Any]) -> None:
    """Make ``func`` available to every template as the filter ``name``.

    Call it from a playbook (``cdlib.register_filter("shout", str.upper)``). The function
    runs inside the sandbox's rules for what it receives, but is itself trusted code.
    A name of a built-in filter replaces it.
    """
    _check_name("filter", name, func)
    with _lock:
        _user_filters[name] = func
        for env in list(_environments):
            env.filters[name] = func


def register_test(name: str, func: Callable[..., Any]) -> None:
    """Make ``func`` available to every template as the test ``name`` (``x is name``)."""
    _check_name("test", name, func)
    with _lock:
        _user_tests[name] = func
        for env in list(_environments):
            env.tests[name] = func


def refusal(exc: SecurityError) -> str:
    """The message for a template the sandbox refused (without the template's values)."""
    return f"refused by the template sandbox: {exc}"
