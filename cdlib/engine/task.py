"""Tasks: desired state, read current state, decide, apply.

A task is a dataclass of options. Its options are validated in two phases: when the
task is built (values that are still templates are left alone), and for each host after
the engine renders the templated options on a per-host copy (before any host is touched).
Options are marked templated, and given a check, by field metadata (:func:`option`).
The engine then calls :meth:`Task.plan`, which reads typed facts (``ctx.fact(f)``) and
returns the task's own :class:`Plan` subclass; in check mode the plan is the result,
otherwise :meth:`Task.apply` carries it out. Both modes share ``plan``, so ``--check``
cannot lie.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import ClassVar, Generic, Self, TypeVar

from cdlib.connections.base import CommandResult, Connection
from cdlib.engine.errors import Origin, PlaybookError, TaskFailed, suggest
from cdlib.engine.factcache import FactCache
from cdlib.engine.origin import caller_origin
from cdlib.engine.secrets import Redactor, Secret
from cdlib.engine.templating import Templar, TemplateError, is_template
from cdlib.facts.base import Fact
from cdlib.jinja_filters import OMIT

T = TypeVar("T")


class Status(StrEnum):
    """The outcome of one task on one host."""

    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"


class Then(StrEnum):
    """What the engine does with a plan once it is made."""

    #: A real run applies the plan when it has changes (the usual case).
    APPLY = "apply"
    #: A real run applies the plan even though it reports no change.
    ALWAYS = "always"
    #: The task did its work while planning (read-only commands); nothing to apply.
    DONE = "done"
    #: Report the task as skipped on this host, ``ok_msg`` being the reason; nothing to apply.
    SKIP = "skip"


class Affects(Enum):
    """Marker for :attr:`Plan.affects`: the change may touch anything on the host."""

    EVERYTHING = "everything"


#: A fact and the value a planned change would leave it with (check mode).
Prediction = tuple[Fact[object], object]


@dataclass(kw_only=True)
class Plan:
    """What a task would do on a host. No ``changes`` means the host is already right.

    A task that carries state from planning to applying (what it read, what it built)
    subclasses ``Plan`` with typed fields and declares it as ``Task[ThatPlan]``.
    """

    changes: list[str] = field(default_factory=list)
    diff: str | None = None
    #: Paths this plan changes, whose cached facts are dropped after ``apply``; or
    #: :attr:`Affects.EVERYTHING` (commands may change anything).
    affects: list[str] | Affects = field(default_factory=list)
    #: Message for an unchanged result (the reason with :attr:`Then.SKIP`).
    ok_msg: str = ""
    #: What the engine does next.
    then: Then = Then.APPLY
    #: The change touches the :attr:`affects` paths themselves, not what is under them
    #: (creating a directory, changing its mode): facts about other paths stay valid.
    shallow: bool = False

    @property
    def changed(self) -> bool:
        """Whether applying this plan changes the host."""
        return bool(self.changes)

    @property
    def applies(self) -> bool:
        """Whether a real run calls :meth:`Task.apply` with this plan."""
        return self.then is Then.ALWAYS or (self.then is Then.APPLY and self.changed)

    @property
    def stale_paths(self) -> list[str] | None:
        """The paths whose facts this plan makes stale; ``None`` for every fact."""
        return None if self.affects is Affects.EVERYTHING else list(self.affects)


#: The plan type of a task (covariant: the engine handles every task as ``Task[Plan]``).
P = TypeVar("P", bound=Plan, covariant=True)


class DeferRefused(Exception):
    """A batched ``apply`` did something a batch cannot hold (the engine then runs it alone)."""


@dataclass
class HostContext:
    """What a task sees while running on one host."""

    host: str
    conn: Connection
    facts: FactCache
    vars: Mapping[str, object]
    check: bool
    diff: bool
    redact: Redactor
    #: Changes predicted so far on this host in check mode (not made).
    predicted: int = 0
    #: While the engine batches an ``apply``: its commands, as (command, stdin,
    #: exact_stdin), in order.
    recording: list[tuple[str, bytes | None, bool]] | None = None

    def fact(self, f: Fact[T], *, expected: bool = False) -> T:
        """A fact's value (cached for the run), typed as the fact parses it.

        ``expected``: the caller only looks at what kind of thing is there, so the state
        that changes still held in the engine's batch will leave will do (no read of the
        host before they ran). Without it a read always sees what is on the host.
        """
        return self.facts.get(f, expected=expected)

    def run(
        self,
        command: str,
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = None,
        exact_stdin: bool = False,
    ) -> CommandResult:
        """Run ``command``; with ``check`` a non-zero exit raises :class:`TaskFailed`.

        ``exact_stdin``: whenever the command succeeds it has read exactly ``stdin``
        (a sized ``head -c``, as ``atomic_write_command(size=...)`` does), so a batch can
        hand it the rest of one shared stdin without framing it.
        """
        if self.recording is not None:
            # Batched: the command runs later with its neighbours. Only a checked command
            # whose output nobody reads can wait (its result here is a plain success).
            if not check or env or timeout is not None:
                raise DeferRefused(command)
            self.recording.append((command, stdin, exact_stdin))
            return CommandResult(command, 0, "", "")
        self.facts.sync()
        wrapped, marker = self.facts.wrap(command)
        res = self.conn.run(wrapped, stdin=stdin, env=env, timeout=timeout)
        if marker is not None:
            res = self.facts.unwrap(res, marker, command)
        if check and not res.ok:
            detail = (res.stderr or res.stdout).strip()
            raise TaskFailed(f"command failed (exit {res.exit_code}): {detail}")
        return res


#: Checks one string value of an option: ``(option name, value)`` to an error message,
#: or ``None`` when the value is fine.
OptionCheck = Callable[[str, str], str | None]

_SPEC_KEY = "cdlib.option"


@dataclass(frozen=True)
class OptionSpec:
    """How the engine treats one option (see :func:`option`)."""

    templated: bool = False
    check: OptionCheck | None = None


def option(*, templated: bool = False, check: OptionCheck | None = None) -> dict[str, OptionSpec]:
    """Field metadata for a task option: ``field(metadata=option(templated=True, check=...))``.

    ``templated`` options are rendered with jinja2 for each host. ``check`` runs on every
    string value of the option (each item of a list, each value of a mapping): when the task
    is built, except on values that are still templates, and again on each host's rendered
    values, so a template can never slip a value past it.
    """
    return {_SPEC_KEY: OptionSpec(templated, check)}


def absolute_path(name: str, value: str) -> str | None:
    """:data:`OptionCheck`: the value must be an absolute path."""
    if value.startswith("/"):
        return None
    return f"option {name!r} must be an absolute path, got {value!r}"


#: While a playbook file loads: the tasks' construction errors, collected so that every
#: bad task of the file is reported at once (with the render errors), not just the first.
_load_errors: contextvars.ContextVar[list[PlaybookError] | None] = contextvars.ContextVar(
    "cdlib_task_errors", default=None
)


@contextmanager
def collect_task_errors() -> Iterator[list[PlaybookError]]:
    """Within the block, a task whose options are refused adds its error to the list
    yielded and is replaced by an :class:`InvalidTask`, instead of raising."""
    bucket: list[PlaybookError] = []
    token = _load_errors.set(bucket)
    try:
        yield bucket
    finally:
        _load_errors.reset(token)


class _TaskMeta(type):
    """Turns a bad keyword into a located :class:`PlaybookError` at construction."""

    @property
    def __signature__(cls) -> inspect.Signature:
        """The task's options, as its dataclass ``__init__`` takes them.

        Without it, ``inspect.signature`` and ``help()`` would show this metaclass's
        ``__call__``, ``(*args, **kwargs)``, for every task.
        """
        sig = inspect.signature(cls.__init__)  # type: ignore[misc]
        params = list(sig.parameters.values())[1:]  # drop self
        return sig.replace(parameters=params, return_annotation=inspect.Signature.empty)

    def __call__(cls, *args: object, **kwargs: object) -> object:
        try:
            return super().__call__(*args, **kwargs)
        except TypeError as exc:
            err = unknown_option_error(exc, caller_origin(), cls)
        except PlaybookError as exc:
            err = exc
        bucket = _load_errors.get()
        if bucket is None:
            raise err from None
        bucket.append(err)
        return InvalidTask(
            name=str(getattr(cls, "kind", "task")), origin=err.origin or caller_origin()
        )


@dataclass(kw_only=True)
class Task(Generic[P], metaclass=_TaskMeta):
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
    when: str | Callable[[Mapping[str, object]], bool] | None = None
    run_once: bool = False
    ignore_errors: bool = False
    no_log: bool = False
    tags: str | tuple[str, ...] | list[str] = ()
    origin: Origin = field(default_factory=caller_origin, repr=False, compare=False)
    #: Set on the per-host copy made by :meth:`prepare`: options are rendered.
    _per_host: bool = field(default=False, init=False, repr=False, compare=False)

    #: Short task type name used in default names and errors.
    kind: ClassVar[str] = "task"
    #: ``apply`` only runs checked commands (``ctx.run``) and never reads their output,
    #: so the engine may run them later in one command with the changes of the next
    #: tasks (see docs/performance.md). A task that does anything else while applying
    #: (a transfer, reading output) still works: the engine then runs it alone.
    batchable: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if isinstance(self.notify, str):
            self.notify = (self.notify,)
        else:
            self.notify = tuple(self.notify)
        self.tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        self._validate_all()

    # -- overridable -------------------------------------------------------
    def validate(self) -> None:
        """Check option combinations; raise :meth:`error` on bad input.

        Runs when the task is built and again on each host's rendered copy; use
        :meth:`pending` to leave alone an option that is still a template.
        """

    def facts(self) -> list[Fact[object]]:
        """Facts :meth:`plan` will read, so they are fetched in one batch."""
        return []

    def plan(self, ctx: HostContext) -> P:
        """Read the current state and decide what to change. Must not change the host."""
        raise NotImplementedError

    # The engine only hands a task back the plan that task made, so taking the covariant
    # plan type as a parameter is sound here.
    def apply(self, ctx: HostContext, plan: P) -> str | None:  # type: ignore[misc]
        """Carry out ``plan``; may return a message for the result."""
        raise NotImplementedError

    def predict(self, plan: P) -> list[Prediction] | None:  # type: ignore[misc]
        """Check mode: the facts ``plan`` would leave behind, or ``None`` when unknown.

        Lets a later task in the same check run see the predicted state (a file that
        would be created) instead of the current one, so check mode and a real run
        agree. ``None`` drops the affected facts instead (they are re-read as they are).
        """
        return None

    def describe(self) -> str:
        """Default task name from its options."""
        return self.kind

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """This task for one host: a copy with templated options rendered (local work only).

        Always a new object, so nothing per host (rendered values, or what an override
        derives from them) is ever written onto the task the playbook built. When an
        option was rendered, the copy is validated again with its rendered values.
        """
        t = copy.copy(self)
        t._per_host = True
        rendered = False
        if self.name is not None and templar.is_template(self.name):
            t.name = templar.render_string(self.name, variables, what="option 'name'")
            rendered = True
        for fname, spec in _option_specs(type(self)):
            if not spec.templated:
                continue
            value = getattr(self, fname)
            out = _render_value(value, variables, templar, f"option {fname!r}")
            if out == OMIT:
                out = self._omitted(fname)
            if out is not value:
                setattr(t, fname, out)
                rendered = True
        if rendered:
            t._validate_all()
        return t

    def _omitted(self, fname: str) -> object:
        # '{{ x | default(omit) }}': the option takes its default, as in Ansible.
        for f in dataclasses.fields(self):
            if f.name == fname:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
        raise self.error(f"option {fname!r} is required and cannot be omitted")

    # -- helpers -----------------------------------------------------------
    @classmethod
    def templated_options(cls) -> tuple[str, ...]:
        """Names of the options rendered with jinja2 per host."""
        return tuple(n for n, spec in _option_specs(cls) if spec.templated)

    def pending(self, option_name: str) -> bool:
        """Whether a templated option still holds a template (only before rendering)."""
        if self._per_host:
            return False
        spec = dict(_option_specs(type(self))).get(option_name)
        if spec is None or not spec.templated:
            return False
        return any(is_template(s) for s in strings_in(getattr(self, option_name)))

    @property
    def label(self) -> str:
        """The task's name as shown in output."""
        return self.name or self.describe()

    def error(self, message: str) -> PlaybookError:
        """A :class:`PlaybookError` located at this task's definition."""
        return PlaybookError(message, origin=self.origin, task=self.label)

    def should_run(self, variables: Mapping[str, object], templar: Templar) -> bool:
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

    def _validate_all(self) -> None:
        _check_types(self)
        for fname, spec in _option_specs(type(self)):
            if spec.check is None:
                continue
            for s in strings_in(getattr(self, fname)):
                if spec.templated and not self._per_host and is_template(s):
                    continue  # checked on each host once rendered
                problem = spec.check(fname, s)
                if problem is not None:
                    raise self.error(problem)
        self.validate()


@dataclass(kw_only=True)
class InvalidTask(Task[Plan]):
    """Stands in for a task whose options were refused while a playbook loaded.

    Its error is reported with the playbook's other errors, so the run never starts;
    until then it runs on no host and adds no error of its own.
    """

    kind = "invalid"

    def should_run(self, variables: Mapping[str, object], templar: Templar) -> bool:
        """Never: the task's error is already reported."""
        return False


@dataclass(kw_only=True)
class FlushHandlers(Task[Plan]):
    """Run the handlers notified so far on each host, here rather than at the end of the play.

    As Ansible's ``meta: flush_handlers``: put it before a task that needs the
    restarted service (a smoke check after a release), so the check tests the new
    configuration. Handlers notified after it run again at the end of the play. It is
    not a task of its own on a host: the scheduler runs the handlers in its place. In
    check mode the handlers report what they would do, as at the end of a play.

    Example:
        ```python
        play.task(tasks.template("shop.conf.j2", "/etc/shop.conf", notify="restart shop"))
        play.task(tasks.flush_handlers())  # the smoke check after it sees the restarted app
        ```
    """

    kind = "flush_handlers"

    def validate(self) -> None:
        """It notifies nothing and runs on every host of the batch."""
        if self.notify or self.run_once:
            raise self.error("flush_handlers takes no 'notify' or 'run_once'")

    def plan(self, ctx: HostContext) -> Plan:
        """Never planned: the scheduler runs the notified handlers instead."""
        return Plan(ok_msg="no handlers notified", then=Then.DONE)


_SPECS: dict[type, list[tuple[str, OptionSpec]]] = {}


def _option_specs(cls: type) -> list[tuple[str, OptionSpec]]:
    found = _SPECS.get(cls)
    if found is None:
        found = []
        for f in dataclasses.fields(cls):
            spec = f.metadata.get(_SPEC_KEY)
            if isinstance(spec, OptionSpec):
                found.append((f.name, spec))
        _SPECS[cls] = found
    return found


def strings_in(value: object) -> Iterator[str]:
    """Every string in ``value``, looking into lists, tuples and mapping values (the
    strings of an option that may hold templates)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings_in(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings_in(v)


def _render_value(
    value: object, variables: Mapping[str, object], templar: Templar, what: str
) -> object:
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
_HINTS: dict[type, list[tuple[str, object]]] = {}


def _option_hints(cls: type) -> list[tuple[str, object]]:
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


def _check_types(task: Task[Plan]) -> None:
    for name, hint in _option_hints(type(task)):
        value = getattr(task, name)
        if not _matches(value, hint):
            raise PlaybookError(
                f"option {name!r} must be {_type_name(hint)}, got {type(value).__name__}"
                f" {_short(value)}",
                origin=task.origin,
                task=task.name or task.kind,
            )


def _short(value: object) -> str:
    if isinstance(value, Secret):
        return repr(value)
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _matches(value: object, hint: object) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is typing.Any:
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


def _type_name(hint: object) -> str:
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


def unknown_option_error(exc: TypeError, origin: Origin, task_cls: type) -> PlaybookError:
    """Turn Python's 'unexpected keyword argument' into a located, helpful error."""
    msg = str(exc)
    kind = str(getattr(task_cls, "kind", "task"))
    names = [f.name for f in dataclasses.fields(task_cls) if f.init and f.name != "origin"]
    marker = "unexpected keyword argument '"
    if marker in msg:
        bad = msg.split(marker, 1)[1].split("'", 1)[0]
        return PlaybookError(
            f"unknown option {bad!r} for {kind}{suggest(bad, names)}",
            origin=origin,
            task=kind,
        )
    return PlaybookError(f"{kind}: {msg}", origin=origin, task=kind)


__all__ = [
    "Affects",
    "DeferRefused",
    "FlushHandlers",
    "HostContext",
    "InvalidTask",
    "OptionCheck",
    "OptionSpec",
    "Plan",
    "Prediction",
    "Status",
    "Task",
    "TaskFailed",
    "TemplateError",
    "Then",
    "absolute_path",
    "collect_task_errors",
    "option",
    "strings_in",
]
