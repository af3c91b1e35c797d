"""Playbook tasks for feature flags in a flag file on hosts or in SSM Parameter Store.

``flag_file`` deploys a whole flag file and validates it before any host is
touched; ``flag_set``, ``flag_ramp`` and ``flag_kill`` change one flag in the
file already on each host (``path``) or in an SSM parameter (``parameter``).
Every write is atomic (temp file in the same directory, then rename), so
``openfeature-provider-flagd`` watching the file never reads half of it; a change
that would make the flags invalid fails the task and leaves them as they were.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Self

from cdlib.connections.shell import atomic_write_command, q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext, Plan, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.flags.audit import AuditLog
from cdlib.flags.document import FlagDocument, format_for, parse_document
from cdlib.flags.errors import FlagsError, FlagValidationError
from cdlib.flags.mutate import (
    FlagChange,
    kill_switch,
    rollout_weights,
    set_default_variant,
    set_rollout,
    set_state,
)
from cdlib.flags.stores import SSMParameterStore
from cdlib.flags.validate import check_document
from cdlib.tasks.files import ContentPlan, File

__all__ = [
    "FlagChangePlan",
    "FlagFile",
    "FlagKill",
    "FlagRamp",
    "FlagSet",
    "flag_file",
    "flag_kill",
    "flag_ramp",
    "flag_set",
]


@dataclass
class FlagFile(File):
    """Deploy a flag file (flagd's JSON or YAML format), validated before any host.

    Options as :func:`cdlib.tasks.file` (``path``, ``content`` or ``src``, ``mode``,
    ``owner``, ``group``). The content is checked against flagd's rules while the
    play is prepared, so a bad file fails the play with ``file:line``, flag and field
    before any host is touched, and the file on the hosts stays as it was.

    With ``keep_live=True`` the file deploys the flags' definitions and leaves their live
    values to :class:`FlagSet`, :class:`FlagRamp` and :class:`FlagKill`: for each flag
    already in the host's file, its ``state``, ``defaultVariant`` and ``targeting`` (a
    rollout's weights) are kept as the host has them. So ``flag_file`` followed by
    ``flag_ramp`` writes nothing on a re-run and never passes through the file's own
    rollout between the two. The result is validated; if the kept values no longer fit
    the new definitions (a variant removed), the task fails and the file stays as it was.

    Check mode reports the change (with a diff under ``--diff``), validated the same
    way; nothing is written.

    Example:
        ```python
        play.task(tasks.flag_file("/etc/app/flags.json", src="flags/prod.json"))
        ```
    """

    keep_live: bool = field(default=False, metadata=option())

    kind = "flag_file"

    def describe(self) -> str:
        """``flag_file /path``."""
        return f"flag_file {self.path}"

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render and read like ``file``, then validate the flag document."""
        t = super().prepare(variables, templar)
        data = t.desired_bytes()
        if data is None:
            raise self.error("flag_file needs 'content' or 'src'")
        source = str(t.src) if t.src is not None else f"{t.path} (content)"
        try:
            doc = parse_document(data.decode("utf-8"), source, format_for(t.src or t.path))
            check_document(doc)
        except FlagValidationError as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems if p.severity == "error")
            raise self.error(f"invalid flag file, nothing was deployed:\n{lines}") from None
        except (FlagsError, UnicodeDecodeError) as exc:
            raise self.error(f"invalid flag file, nothing was deployed: {exc}") from None
        return t

    def plan(self, ctx: HostContext) -> ContentPlan:
        """As ``file``; with ``keep_live``, the content is the file with the host's live
        values of its flags (the host's bytes when that is what the host has)."""
        data = self.desired_bytes()
        if not self.keep_live or self.state != "present" or data is None:
            return super().plan(ctx)
        st: FileState = ctx.fact(PathFact(self.path))
        if not st.exists or st.kind != "file":
            return super().plan(ctx)
        raw = st.content
        if raw is None:  # too large for the fact: one more round trip
            raw = ctx.run(f"cat -- {q(self.path)}").stdout.encode("utf-8")
        fmt = format_for(self.path)
        try:
            live = parse_document(raw.decode("utf-8"), f"{ctx.host}:{self.path}", fmt)
        except (FlagsError, UnicodeDecodeError):
            # Nothing readable to keep: the file as given repairs it.
            return super().plan(ctx)
        want = parse_document(data.decode("utf-8"), self.path, format_for(self.src or self.path))
        merged = _keep_live_values(want, live)
        try:
            check_document(merged)
        except FlagValidationError as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems if p.severity == "error")
            raise TaskFailed(
                f"keeping the host's live flag values (keep_live) would make the flags "
                f"invalid; nothing was written:\n{lines}"
            ) from None
        if merged.data == live.data:
            out = raw  # same flags as the host has: no write, whatever the formatting
        elif merged.data == want.data and format_for(self.src or self.path) == fmt:
            out = data
        else:
            out = merged.dumps(fmt).encode("utf-8")
        merged_task = copy.copy(self)
        merged_task._data = out
        return File.plan(merged_task, ctx)


#: The fields of a flag that flag_set / flag_ramp / flag_kill change.
_LIVE_FIELDS = ("state", "defaultVariant", "targeting")


def _keep_live_values(want: FlagDocument, live: FlagDocument) -> FlagDocument:
    """``want`` with, for each of its flags also in ``live``, the live fields of ``live``
    (``_LIVE_FIELDS``; a field the live flag lacks, such as a killed flag's
    ``targeting``, is dropped)."""
    data = copy.deepcopy(want.data)
    flags = data.get("flags")
    if not isinstance(flags, dict):
        return want
    for key, definition in flags.items():
        current = live.flags.get(key)
        if not isinstance(definition, dict) or not isinstance(current, dict):
            continue
        for name in _LIVE_FIELDS:
            if name in current:
                definition[name] = copy.deepcopy(current[name])
            else:
                definition.pop(name, None)
    return dataclasses.replace(want, data=data, lines={})


@dataclass(kw_only=True)
class FlagChangePlan(Plan):
    """A flag change: the new document (SSM) or file text (flag file), and the changes."""

    document: FlagDocument | None = None
    text: bytes = b""
    flag_changes: list[FlagChange] = field(default_factory=list)


@dataclass(kw_only=True)
class _FlagChangeTask(Task[FlagChangePlan]):
    """Change one flag in the flag file on the host, or in an SSM parameter.

    With ``path``: read the file on each host, change, validate, write atomically.
    With ``parameter``: change the SSM parameter once from the machine running
    cdlib (the task runs once per play; ``endpoint_url``/``region`` pick the AWS
    endpoint, credentials come from boto3's usual places).
    """

    path: str | None = field(default=None, metadata=option(templated=True, check=absolute_path))
    parameter: str | None = field(default=None, metadata=option(templated=True))
    endpoint_url: str | None = None
    region: str | None = None
    flag: str = field(metadata=option(templated=True))
    audit_log: str | None = field(default=None, metadata=option(templated=True))

    def validate(self) -> None:
        """Exactly one target; an absolute path."""
        if (self.path is None) == (self.parameter is None):
            raise self.error("give exactly one of 'path' (a flag file) or 'parameter' (SSM)")
        if self.parameter is not None:
            # One AWS parameter, not one per host: change it once, from here.
            self.run_once = True

    def facts(self) -> list[Fact[object]]:
        """The flag file's state and (small) content."""
        return [PathFact(self.path)] if self.path is not None else []

    def change(self, doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        """The change this task makes to the document."""
        raise NotImplementedError

    def _changed(self, doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        try:
            return self.change(doc)
        except FlagValidationError as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems if p.severity == "error")
            raise TaskFailed(f"the change would make the flags invalid:\n{lines}") from None
        except FlagsError as exc:
            raise TaskFailed(str(exc)) from None

    def _ssm(self) -> SSMParameterStore:
        assert self.parameter is not None
        return SSMParameterStore(
            self.parameter, endpoint_url=self.endpoint_url, region_name=self.region
        )

    def plan(self, ctx: HostContext) -> FlagChangePlan:
        """Read the current flags and compute the validated new document."""
        if self.parameter is not None:
            store = self._ssm()
            try:
                doc = store.read()
            except FlagsError as exc:
                raise TaskFailed(str(exc)) from None
            new, changes = self._changed(doc)
            if not changes:
                return FlagChangePlan(ok_msg=f"flag {self.flag} unchanged")
            return FlagChangePlan(
                changes=[str(c) for c in changes], document=new, flag_changes=changes
            )
        assert self.path is not None
        st: FileState = ctx.fact(PathFact(self.path))
        if not st.exists or st.kind != "file":
            raise TaskFailed(f"{self.path}: no flag file on the host (deploy it with flag_file)")
        raw = st.content
        if raw is None:  # too large for the fact: one more round trip
            raw = ctx.run(f"cat -- {q(self.path)}").stdout.encode("utf-8")
        try:
            old_text = raw.decode("utf-8")
            doc = parse_document(old_text, f"{ctx.host}:{self.path}", format_for(self.path))
        except (FlagsError, UnicodeDecodeError) as exc:
            raise TaskFailed(str(exc)) from None
        new, changes = self._changed(doc)
        if not changes:
            return FlagChangePlan(ok_msg=f"flag {self.flag} unchanged")
        new_text = new.dumps(format_for(self.path))
        diff = None
        if ctx.diff:
            diff = "".join(
                difflib.unified_diff(
                    old_text.splitlines(keepends=True),
                    new_text.splitlines(keepends=True),
                    f"{self.path} (before)",
                    f"{self.path} (after)",
                )
            )
        return FlagChangePlan(
            changes=[str(c) for c in changes],
            affects=[self.path],
            text=new_text.encode("utf-8"),
            flag_changes=changes,
            diff=diff,
        )

    def apply(self, ctx: HostContext, plan: FlagChangePlan) -> str | None:
        """One atomic write (or one PutParameter), then the audit entry."""
        changes = plan.flag_changes
        if self.parameter is not None:
            assert plan.document is not None
            store = self._ssm()
            try:
                store.write(plan.document)
            except FlagsError as exc:
                raise TaskFailed(str(exc)) from None
            target = store.name
        else:
            assert self.path is not None
            ctx.run(atomic_write_command(self.path, None, None, None), stdin=plan.text)
            target = f"{ctx.host}:{self.path}"
        if self.audit_log:
            AuditLog(self.audit_log).record(changes, target=target, action=self.kind)
        return None


@dataclass
class FlagSet(_FlagChangeTask):
    """Set a flag's ``state`` and/or ``default_variant`` in the flag file on each host.

    Options: ``path`` (the flag file), ``flag`` (its key), ``state`` (ENABLED or
    DISABLED), ``default_variant``, ``audit_log`` (a local JSON Lines file that gets
    who/when/flag/old -> new for every change).

    Check mode reports the flag change (old -> new); neither the flag file nor the
    audit log is written.

    Example:
        ```python
        play.task(tasks.flag_set(path="/etc/app/flags.json", flag="new-checkout", state="ENABLED"))
        ```
    """

    state: Literal["ENABLED", "DISABLED"] | None = None
    default_variant: str | None = None

    kind = "flag_set"

    def validate(self) -> None:
        """Something to set."""
        super().validate()
        if self.state is None and self.default_variant is None:
            raise self.error("flag_set needs 'state' or 'default_variant'")

    def describe(self) -> str:
        """``flag_set key``."""
        return f"flag_set {self.flag}"

    def change(self, doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        """State, then default variant."""
        changes: list[FlagChange] = []
        if self.state is not None:
            doc, c = set_state(doc, self.flag, self.state)
            changes += c
        if self.default_variant is not None:
            doc, c = set_default_variant(doc, self.flag, self.default_variant)
            changes += c
        return doc, changes


@dataclass
class FlagRamp(_FlagChangeTask):
    """Ramp a fractional rollout: ``percent`` % of users get ``variant``.

    Options: ``path``, ``flag``, ``percent`` (0..100), ``variant`` and ``baseline``
    (default for boolean flags: the true and the false variant), ``audit_log``.
    Users keep their bucket from step to step (10 -> 50 -> 100).

    Check mode reports the new weights; neither the flag file nor the audit log is written.

    Example:
        ```python
        play.task(tasks.flag_ramp(path="/etc/app/flags.json", flag="new-checkout", percent=25))
        ```
    """

    percent: int
    variant: str | None = None
    baseline: str | None = None

    kind = "flag_ramp"

    def validate(self) -> None:
        """0 <= percent <= 100."""
        super().validate()
        if not 0 <= self.percent <= 100:
            raise self.error(f"option 'percent' must be 0..100, got {self.percent}")

    def describe(self) -> str:
        """``flag_ramp key to N%``."""
        return f"flag_ramp {self.flag} to {self.percent}%"

    def change(self, doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        """New weights in the flag's fractional rule."""
        weights = rollout_weights(doc, self.flag, self.percent, self.variant, self.baseline)
        return set_rollout(doc, self.flag, weights)


@dataclass
class FlagKill(_FlagChangeTask):
    """Kill switch: serve ``variant`` (for a boolean flag, its false variant) to everyone.

    Drops the flag's targeting; the old targeting is kept in the audit log.

    Check mode reports the change; neither the flag file nor the audit log is written.

    Example:
        ```python
        play.task(tasks.flag_kill(path="/etc/app/flags.json", flag="new-checkout"))
        ```
    """

    variant: str | None = None

    kind = "flag_kill"

    def describe(self) -> str:
        """``flag_kill key``."""
        return f"flag_kill {self.flag}"

    def change(self, doc: FlagDocument) -> tuple[FlagDocument, list[FlagChange]]:
        """Default variant set, targeting removed."""
        return kill_switch(doc, self.flag, self.variant)


flag_file = FlagFile
flag_set = FlagSet
flag_ramp = FlagRamp
flag_kill = FlagKill
