"""Taint tracking in templates: anything computed from a :class:`~cdlib.secret.Secret`
is a secret.

A template rendered for hosts computes with secrets' real values (``{{ "u:" ~ pw }}``,
``{{ pw | b64encode }}``, ``{{ cfg | to_nice_json }}``), so the host receives the real
text. Each value computed from a secret is a :class:`~cdlib.secret.SecretText` naming the
secrets it came from; what such a value puts into the rendered text (its *chunk*: the
output of one ``{{ }}``) is then learnt by those secrets
(:meth:`~cdlib.secret.Secret.learn`), so every Redactor that knows them masks that text
wherever it is printed. The revealing environment of :mod:`cdlib.jinja_sandbox` calls
these helpers from its filters, operators, calls, attribute and item access and ``~``.

Not tracked: decisions (``{% if pw == x %}yes{% endif %}`` yields plain ``yes``), and
numbers or booleans (``pw | length``). Derived text shorter than
:data:`MIN_DERIVED` characters is not learnt, so a secret's first letter does not mask
that letter everywhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.runtime import Context

from cdlib.secret import MASK, Secret, SecretText

__all__ = [
    "MIN_DERIVED",
    "WALK_LIMIT",
    "Taint",
    "TaintCodeGenerator",
    "TaintContext",
    "call_tainted",
    "plain",
    "reveal",
    "reveal_small",
    "revealing_test",
    "sources_in",
    "taint",
    "taint_concat",
    "taint_finalize",
    "taint_join",
    "taint_scope",
    "tainting_filter",
]

#: Derived text shorter than this is not masked in output (it would mask common words).
MIN_DERIVED = 4

#: Values looked into for secrets at most, per variable or per filter call: a larger
#: structure (``hostvars``) is not walked on every render, and its secrets are revealed
#: only as a template reaches them (``hostvars[h].pw``).
WALK_LIMIT = 1000


def _small(obj: Any) -> bool:
    budget = WALK_LIMIT
    stack = [obj]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return True


class Taint:
    """What one render computed from secrets: the chunks of output and every derived value."""

    def __init__(self) -> None:
        self.chunks: dict[str, tuple[Secret, ...]] = {}
        self.seen: dict[str, tuple[Secret, ...]] = {}

    def note(self, value: SecretText) -> None:
        """Record a derived value computed during this render (for scrubbing errors)."""
        self.seen.setdefault(str(value), value.sources)

    def chunk(self, value: SecretText) -> None:
        """Record text a secret put into the output."""
        self.chunks.setdefault(str(value), value.sources)
        self.note(value)

    def finish(self, out: str) -> str:
        """The rendered ``out``: a :class:`SecretText` when a secret contributed, after its
        sources learnt every chunk they put in; plain text otherwise.

        The literal text of the template around a chunk is not learnt: ``/srv/{{ pw }}``
        shows as ``/srv/********``, and ``{{ "/srv/" ~ pw }}`` (one value computed
        from the secret) as ``********``.
        """
        if not isinstance(out, SecretText) and not any(c in out for c in self.chunks):
            return out
        sources: list[Secret] = list(out.sources) if isinstance(out, SecretText) else []
        for text, srcs in self.chunks.items():
            if len(text) >= MIN_DERIVED:
                for s in srcs:
                    s.learn([text])
            sources.extend(srcs)
        return SecretText(str(out), sources)

    def scrub(self, message: str) -> str:
        """``message`` with every secret and derived value this render saw masked (for
        errors raised while rendering, before any Redactor sees them)."""
        values: set[str] = set()
        for text, srcs in self.seen.items():
            if len(text) >= MIN_DERIVED:
                values.add(text)
            values.update(s.reveal() for s in srcs)
        for v in sorted((v for v in values if v), key=len, reverse=True):
            message = message.replace(v, MASK)
        return message


_scope: ContextVar[Taint | None] = ContextVar("cdlib_taint", default=None)


@contextmanager
def taint_scope() -> Iterator[Taint]:
    """Track taint for the renders inside (one :class:`Taint` for nested templates)."""
    scope = Taint()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def _derived(value: str, sources: list[Secret]) -> SecretText:
    out = SecretText(value, sources)
    scope = _scope.get()
    if scope is not None:
        scope.note(out)
    return out


def sources_in(obj: Any, into: list[Secret] | None = None) -> list[Secret]:
    """The secrets inside ``obj`` (a value, or nested lists, tuples, sets and dicts)."""
    found = [] if into is None else into
    if isinstance(obj, Secret):
        found.append(obj)
    elif isinstance(obj, SecretText):
        found.extend(obj.sources)
    elif isinstance(obj, str):
        pass
    elif isinstance(obj, dict):
        for v in obj.values():
            sources_in(v, found)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            sources_in(v, found)
    return found


def _direct(obj: Any) -> bool:
    return isinstance(obj, Secret | SecretText)


def reveal(obj: Any) -> Any:
    """``obj`` with each :class:`Secret` replaced by its real value as a
    :class:`SecretText` (containers copied only where a secret is found)."""
    if isinstance(obj, Secret):
        return SecretText(obj.reveal(), (obj,))
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        out = {k: reveal(v) for k, v in obj.items()}
        return obj if all(out[k] is obj[k] for k in obj) else out
    if isinstance(obj, list | tuple):
        items = [reveal(v) for v in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return items if isinstance(obj, list) else tuple(items)
    return obj


def reveal_small(obj: Any) -> Any:
    """:func:`reveal` for a value up to :data:`WALK_LIMIT` items; a larger one as it is
    (its secrets are revealed as a template reaches them)."""
    if isinstance(obj, Secret):
        return SecretText(obj.reveal(), (obj,))
    return reveal(obj) if _small(obj) else obj


def taint(out: Any, sources: list[Secret], *, direct: bool) -> Any:
    """The result ``out`` of an operation whose inputs held ``sources``: text becomes a
    :class:`SecretText`; with ``direct`` (a secret itself was an operand, as in
    ``pw.split(':')``) the texts inside a list or tuple result too."""
    if not sources:
        return out
    if isinstance(out, Secret):
        return reveal(out)
    if isinstance(out, str):
        srcs = [*out.sources, *sources] if isinstance(out, SecretText) else sources
        return _derived(str(out), srcs)
    if direct and isinstance(out, list | tuple):
        items = [taint(v, sources, direct=True) for v in out]
        return items if isinstance(out, list) else tuple(items)
    return out


def _escaped_forms(args: Any, out: str, sources: list[Secret]) -> None:
    # A secret inside a structure dumped as JSON appears escaped ("a\"b"); masking that
    # form keeps it hidden in a line-by-line diff of the dumped text.
    leaves: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, SecretText):
            leaves.append(str(obj))
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v)

    walk(args)
    forms = set()
    for leaf in leaves:
        for ascii_only in (True, False):
            form = json.dumps(leaf, ensure_ascii=ascii_only)[1:-1]
            if form != leaf and form in out:
                forms.add(form)
    if forms:
        for s in sources:
            s.learn(forms)


def call_tainted(invoke: Callable[..., Any], args: Any, kwargs: Any, owner: Any = None) -> Any:
    """``invoke(*args, **kwargs)`` with secrets revealed; the result is secret when an
    argument held one, or when ``owner`` (the text whose method this is) is secret."""
    # A lazy argument (``map(...)``) is read here, so the secrets it yields are seen.
    args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
    if not _small((args, kwargs)):
        return invoke(*args, **kwargs)
    sources = sources_in(owner) if _direct(owner) else []
    sources_in(args, sources)
    sources_in(kwargs, sources)
    if not sources:
        return invoke(*args, **kwargs)
    direct = _direct(owner) or any(_direct(a) for a in (*args, *kwargs.values()))
    args = tuple(reveal(a) for a in args)
    kwargs = {k: reveal(v) for k, v in kwargs.items()}
    out = invoke(*args, **kwargs)
    if isinstance(out, str) and not direct:
        _escaped_forms((args, kwargs), out, sources)
    return taint(out, sources, direct=direct)


def tainting_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a filter whose result is secret when any of its inputs is."""
    if getattr(func, "_cdlib_tainting", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return call_tainted(func, args, kwargs)

    wrapper._cdlib_tainting = True  # type: ignore[attr-defined]
    return wrapper


def revealing_test(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a test that sees secrets' real values (``pw is match('^s')``)."""
    if getattr(func, "_cdlib_tainting", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*(reveal(a) for a in args), **{k: reveal(v) for k, v in kwargs.items()})

    wrapper._cdlib_tainting = True  # type: ignore[attr-defined]
    return wrapper


def taint_join(seq: Any) -> str:
    """``a ~ b``: the joined text, secret when any part is."""
    parts = [reveal(p) for p in seq]
    sources = sources_in(parts)
    text = "".join(map(str, parts))
    return _derived(text, sources) if sources else text


def plain(obj: Any) -> Any:
    """``obj`` with secrets and secret texts as plain ``str`` (nested lists and dicts)."""
    if isinstance(obj, Secret):
        return obj.reveal()
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [plain(v) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def taint_finalize(value: Any) -> Any:
    """What ``{{ value }}`` outputs: a secret's real value, recorded as a chunk (a list
    or dict holding secrets prints with their real values, and is secret)."""
    value = reveal(value)
    if isinstance(value, dict | list | tuple):
        sources = sources_in(value)
        if sources:
            value = _derived(str(plain(value)), sources)
    if isinstance(value, SecretText):
        scope = _scope.get()
        if scope is not None:
            scope.chunk(value)
    return value


def taint_concat(pieces: Any) -> str:
    """The environment's ``concat``: joins rendered pieces; the result is secret when a
    secret put text into it (a whole render, ``{% set %}`` blocks, macros)."""
    scope = _scope.get()
    if scope is None:
        with taint_scope() as own:
            parts = [str(p) for p in pieces]
            return own.finish("".join(parts))
    parts = [str(p) for p in pieces]
    text = "".join(parts)
    sources = [s for p in parts for s in scope.chunks.get(p, ())]
    return _derived(text, sources) if sources else text


class TaintContext(Context):
    """A template context that hands secrets to templates as their real values."""

    def resolve_or_missing(self, key: str) -> Any:
        """The variable ``key`` with secrets revealed (:func:`reveal`; a structure larger
        than :data:`WALK_LIMIT` is revealed as a template reaches into it)."""
        return reveal_small(super().resolve_or_missing(key))


class TaintCodeGenerator(CodeGenerator):
    """Compiles ``~`` to :func:`taint_join`, so concatenation keeps taint."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        """``a ~ b`` as ``environment.taint_join((a, b))``."""
        self.write("environment.taint_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")
