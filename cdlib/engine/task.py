"""Tasks: desired state, read current state, decide, apply.

A task is a dataclass of options. For each host the engine renders its templated
options (before any host is touched), then calls :meth:`Task.plan` which reads facts
and returns a :class:`Plan`; in check mode the plan is the result, otherwise
:meth:`Task.apply` carries it out. Both modes share ``plan``, so ``--check`` cannot lie.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from cdlib.connections.base import CommandResult, Connection
from cdlib.engine.errors import Origin, PlaybookError, TaskFailed, suggest
from cdlib.engine.factcache import FactCache
from cdlib.engine.origin import caller_origin
from cdlib.engine.secrets import Redactor, Secret
from cdlib.engine.templating import Templar, TemplateError
from cdlib.facts.base import Fact

T = TypeVar("T")


class Status(StrEnum):
    """The outcome of one task on one host."""

    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"


@dataclass
class Plan:
    """What a task would do on a host. No ``changes`` means the host is already right."""

    changes: list[str] = field(default_factory=list)
    diff: str | None = None
    #: Paths this plan changes; their cached facts are dropped after ``apply``.
    affects: list[str] = field(default_factory=list)
    #: Drop every cached fact after apply (commands may change anything).
    affects_everything: bool = False
    #: Task-specific data carried from plan to apply.
    data: Any = None
    #: The state read while planning (for :meth:`Task.predict`).
    before: Any = None
    #: Message for an unchanged result.
    ok_msg: str = ""
    #: The task already did its work while planning (read-only commands).
    done: bool = False
    #: Nothing to do on this host by the task's own rule (creates/removes).
    skipped: bool = False
    #: Run ``apply`` in a real run even though nothing is reported as changed.
    always_apply: bool = False
    #: Report the task as skipped on this host, with this reason.
    skip_reason: str | None = None

    @property
    def changed(self) -> bool:
        """Whether applying this plan changes the host."""
        return bool(self.changes)


@dataclass
class HostContext:
    """What a task sees while running on one host."""

    host: str
    conn: Connection
    facts: FactCache
    vars: Mapping[str, Any]
    check: bool
    diff: bool
    redact: Redactor
    #: Changes predicted so far on this host in check mode (not made).
    predicted: int = 0

    def fact(self, f: Fact[T]) -> T:
        """A fact's value (cached for the run), typed as the fact parses it."""
        return self.facts.get(f)

    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run ``command``; with ``check`` a non-zero exit raises :class:`TaskFailed`."""
        wrapped, marker = self.facts.wrap(command)
        res = self.conn.run(wrapped, stdin=stdin, env=env, timeout=timeout)
        if marker is not None:
            res = self.facts.unwrap(res, marker, command)
        if check and not res.ok:
            detail = (res.stderr or res.stdout).strip()
            raise TaskFailed(f"command failed (exit {res.exit_code}): {detail}")
        return res


class _TaskMeta(type):
    """Turns a bad keyword into a located :class:`PlaybookError` at construction."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TypeError as exc:
            raise unknown_option_error(exc, caller_origin(), cls) from None


@dataclass(kw_only=True)
class Task(metaclass=_TaskMeta):
    """Options every task accepts.

    Attributes:
        name: what the output calls this task (a default is derived from the options).
        notify: handler names to run at the end of the play when this task changed.
        when: a jinja2 expression (``"env == 'prod'"``) or a callable taking the host's
            vars; the task is skipped on hosts where it is false.
        run_once: run on the first host of the batch only; the others wait for it.
        ignore_errors: a failure is reported but does not stop the host.
        no_log: hide this task's diff and messages (for content that is secret as a whole).
        tags: names to select or skip the task with ``--tags`` / ``--skip-tags``
            (``always`` and ``never`` are special, as in Ansible).
    """

    name: str | None = None
    notify: str | tuple[str, ...] | list[str] = ()
    when: str | Callable[[Mapping[str, Any]], bool] | None = None
    run_once: bool = False
    ignore_errors: bool = False
    no_log: bool = False
    tags: str | tuple[str, ...] | list[str] = ()
    origin: Origin = field(default_factory=caller_origin, repr=False, compare=False)

    #: Option names rendered with jinja2 per host.
    templated: ClassVar[tuple[str, ...]] = ()
    #: Short task type name used in default names and errors.
    kind: ClassVar[str] = "task"

    def __post_init__(self) -> None:
        if isinstance(self.notify, str):
            self.notify = (self.notify,)
        else:
            self.notify = tuple(self.notify)
        self.tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        _check_types(self)
        self.validate()

    # -- overridable -------------------------------------------------------
    def validate(self) -> None:
        """Check option combinations; raise :meth:`error` on bad input."""

    def facts(self) -> list[Fact[object]]:
        """Facts :meth:`plan` will read, so they are fetched in one batch."""
        return []

    def plan(self, ctx: HostContext) -> Plan:
        """Read the current state and decide what to change. Must not change the host."""
        raise NotImplementedError

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Carry out ``plan``; may return a message for the result."""
        raise NotImplementedError

    def predict(self, plan: Plan) -> list[tuple[Fact[object], Any]] | None:
        """Check mode: the facts ``plan`` would leave behind, or ``None`` when unknown.

        Lets a later task in the same check run see the predicted state (a file that
        would be created) instead of the current one, so check mode and a real run
        agree. ``None`` drops the affected facts instead (they are re-read as they are).
        """
        return None

    def describe(self) -> str:
        """Default task name from its options."""
        return self.kind

    def prepare(self, variables: Mapping[str, Any], templar: Templar) -> Task:
        """A copy for one host with templated options rendered (local work only)."""
        changes: dict[str, Any] = {}
        if self.name is not None and templar.is_template(self.name):
            changes["name"] = templar.render_string(self.name, variables, what="option 'name'")
        for fname in self.templated:
            value = getattr(self, fname)
            rendered = _render_value(value, variables, templar, f"option {fname!r}")
            if rendered is not value:
                changes[fname] = rendered
        return dataclasses.replace(self, **changes) if changes else self

    # -- helpers -----------------------------------------------------------
    @property
    def label(self) -> str:
        """The task's name as shown in output."""
        return self.name or self.describe()

    def error(self, message: str) -> PlaybookError:
        """A :class:`PlaybookError` located at this task's definition."""
        return PlaybookError(message, origin=self.origin, task=self.label)

    def should_run(self, variables: Mapping[str, Any], templar: Templar) -> bool:
        """Evaluate ``when`` for a host."""
        if self.when is None:
            return True
        if callable(self.when):
            return bool(self.when(variables))
        expr = self.when
        out = templar.render_string(
            "{% if " + expr + " %}1{% else %}0{% endif %}", variables, what="option 'when'"
        )
        return out == "1"


def _render_value(value: Any, variables: Mapping[str, Any], templar: Templar, what: str) -> Any:
    if isinstance(value, str):
        if not templar.is_template(value):
            return value
        return templar.render_string(value, variables, what=what)
    if isinstance(value, list | tuple):
        items = [_render_value(v, variables, templar, what) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if isinstance(value, dict):
        out = {k: _render_value(v, variables, templar, what) for k, v in value.items()}
        if all(out[k] is value[k] for k in value):
            return value
        return out
    return value


# -- runtime type checks of options --------------------------------------------
#: Checked option names and their type hints, per task class. Resolving the hints
#: costs far more than checking them, and every host's copy of every task is checked.
_HINTS: dict[type, list[tuple[str, Any]]] = {}


def _option_hints(cls: type) -> list[tuple[str, Any]]:
    found = _HINTS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = [
            (f.name, hints[f.name])
            for f in dataclasses.fields(cls)
            if f.name != "origin" and f.init and hints.get(f.name) is not None
        ]
        _HINTS[cls] = found
    return found


def _check_types(task: Task) -> None:
    for name, hint in _option_hints(type(task)):
        value = getattr(task, name)
        if not _matches(value, hint):
            raise PlaybookError(
                f"option {name!r} must be {_type_name(hint)}, got {type(value).__name__}"
                f" {_short(value)}",
                origin=task.origin,
                task=task.name or task.kind,
            )


def _short(value: Any) -> str:
    if isinstance(value, Secret):
        return repr(value)
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (Callable, typing.get_origin(Callable[[], None])):
        return callable(value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list, set, frozenset):
        if not isinstance(value, origin):
            return False
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        if origin is tuple:
            return len(args) == len(value) and all(
                _matches(v, a) for v, a in zip(value, args, strict=True)
            )
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin in (dict, Mapping, typing.get_origin(Mapping[str, str])):
        if not isinstance(value, Mapping):
            return False
        if args:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if hint is type(None):
        return "None"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(hint, "__name__", str(hint))


def unknown_option_error(exc: TypeError, origin: Origin, task_cls: Any) -> PlaybookError:
    """Turn Python's 'unexpected keyword argument' into a located, helpful error."""
    msg = str(exc)
    names = [f.name for f in dataclasses.fields(task_cls) if f.init and f.name != "origin"]
    marker = "unexpected keyword argument '"
    if marker in msg:
        bad = msg.split(marker, 1)[1].split("'", 1)[0]
        return PlaybookError(
            f"unknown option {bad!r} for {task_cls.kind}{suggest(bad, names)}",
            origin=origin,
            task=task_cls.kind,
        )
    return PlaybookError(f"{task_cls.kind}: {msg}", origin=origin, task=task_cls.kind)


__all__ = [
    "HostContext",
    "Plan",
    "Status",
    "Task",
    "TaskFailed",
    "TemplateError",
]
