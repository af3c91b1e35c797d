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

An environment made with ``reveal_secrets=True`` (the one that renders what is sent to
hosts) computes with secrets' real values and keeps track of what they contributed to
(:mod:`cdlib.jinja_taint`): filters, tests, method calls, ``+ * %``, ``~``, attribute and
item access all see the real value, and their results are secret in turn. Others render
a :class:`~cdlib.secret.Secret` as ``********``.
"""

from __future__ import annotations

import keyword
import threading
import weakref
from collections.abc import Callable
from typing import Any

from jinja2 import BaseLoader, StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cdlib import jinja_taint
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


class _RevealingSandbox(ImmutableSandboxedEnvironment):
    """The sandbox that computes with secrets' real values and keeps their taint."""

    code_generator_class = jinja_taint.TaintCodeGenerator
    context_class = jinja_taint.TaintContext
    intercepted_binops = frozenset({"+", "*", "%"})

    def __init__(self, finalize: Callable[[Any], Any] | None, **kwargs: Any) -> None:
        if finalize is None:
            both = jinja_taint.taint_finalize
        else:
            outer = finalize

            def both(value: Any) -> Any:
                return outer(jinja_taint.taint_finalize(value))

        super().__init__(finalize=both, **kwargs)
        # Read by the compiled templates: ``concat`` joins whole renders and blocks,
        # ``taint_join`` is ``~``.
        self.concat = jinja_taint.taint_concat  # type: ignore[method-assign]
        self.taint_join = jinja_taint.taint_join

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute`` on the real value of a secret."""
        obj = jinja_taint.reveal_small(obj)
        return jinja_taint.reveal_small(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``obj[argument]``; an item of secret text is secret."""
        obj = jinja_taint.reveal_small(obj)
        out = jinja_taint.reveal_small(super().getitem(obj, argument))
        return (
            jinja_taint.taint(out, jinja_taint.sources_in(obj), direct=True)
            if (isinstance(obj, str))
            else out
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``left operator right``; secret when an operand is."""
        return jinja_taint.call_tainted(
            lambda a, b: super(_RevealingSandbox, self).call_binop(context, operator, a, b),
            (left, right),
            {},
        )

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``__obj``; secret when an argument, or the text it is a method of, is."""
        owner = getattr(__obj, "__self__", None)
        if owner is None:
            owner = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)

        def invoke(*a: Any, **k: Any) -> Any:
            return ImmutableSandboxedEnvironment.call(__self, __context, __obj, *a, **k)

        return jinja_taint.call_tainted(invoke, args, kwargs, owner)


def _filter_for(env: ImmutableSandboxedEnvironment, func: Any) -> Any:
    return jinja_taint.tainting_filter(func) if isinstance(env, _RevealingSandbox) else func


def _test_for(env: ImmutableSandboxedEnvironment, func: Any) -> Any:
    return jinja_taint.revealing_test(func) if isinstance(env, _RevealingSandbox) else func


def sandboxed_environment(
    *,
    loader: BaseLoader | None = None,
    finalize: Callable[[Any], Any] | None = None,
    keep_trailing_newline: bool = False,
    reveal_secrets: bool = False,
) -> ImmutableSandboxedEnvironment:
    """A new sandboxed environment with ``StrictUndefined`` and no autoescaping.

    ``reveal_secrets``: templates compute with secrets' real values, and whatever a
    secret contributed to is a :class:`~cdlib.secret.SecretText` (for content sent to
    hosts; see :mod:`cdlib.jinja_taint`). Otherwise a secret renders as ``********``.
    """
    options: dict[str, Any] = {
        "loader": loader,
        "undefined": StrictUndefined,
        "keep_trailing_newline": keep_trailing_newline,
        "autoescape": False,
    }
    env = (
        _RevealingSandbox(finalize, **options)
        if reveal_secrets
        else ImmutableSandboxedEnvironment(finalize=finalize, **options)
    )
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    env.globals["omit"] = OMIT
    with _lock:
        env.filters.update(_user_filters)
        env.tests.update(_user_tests)
        if reveal_secrets:
            env.filters = {k: _filter_for(env, f) for k, f in env.filters.items()}
            env.tests = {k: _test_for(env, f) for k, f in env.tests.items()}
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
            env.filters[name] = _filter_for(env, func)


def register_test(name: str, func: Callable[..., Any]) -> None:
    """Make ``func`` available to every template as the test ``name`` (``x is name``)."""
    _check_name("test", name, func)
    with _lock:
        _user_tests[name] = func
        for env in list(_environments):
            env.tests[name] = _test_for(env, func)


def refusal(exc: SecurityError) -> str:
    """The message for a template the sandbox refused (without the template's values)."""
    return f"refused by the template sandbox: {exc}"
