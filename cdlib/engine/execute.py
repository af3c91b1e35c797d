"""Execution: one task on one host, from plan to a :class:`TaskResult`.

Check mode and real runs share this path: the task plans (reads and decides), then a
real run applies the plan while check mode records what the change would leave.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cdlib.connections.base import UnreachableError
from cdlib.engine.errors import CdlibError, PlaybookError, TaskFailed
from cdlib.engine.results import TaskResult
from cdlib.engine.task import Affects, HostContext, Plan, Status, Task, Then
from cdlib.engine.templating import TemplateError
from cdlib.facts.base import Fact


def make_result(
    play: str,
    host: str,
    task: str,
    status: Status,
    msg: str,
    *,
    origin: str = "",
    exc: BaseException | None = None,
    diff: str | None = None,
    changes: list[str] | None = None,
) -> TaskResult:
    """A result line of ``play`` on ``host``."""
    return TaskResult(
        play=play,
        host=host,
        task=task,
        status=status,
        msg=msg,
        diff=diff,
        changes=changes or [],
        origin=origin,
        exception=exc,
    )


def execute_task(
    play: str,
    task: Task[Plan],
    ctx: HostContext,
    *,
    handler_name: str = "",
    soon: Sequence[Fact[object]] = (),
) -> TaskResult:
    """Plan ``task`` on the host of ``ctx``, apply it unless in check mode, and report.

    Failures become the result's status: nothing but ``BaseException`` escapes.
    ``soon`` are facts the next task reads, re-read along with the change.
    """
    t0 = time.monotonic()
    label = handler_name or task.label
    host = ctx.host
    plan: Plan | None = None
    try:
        plan = task.plan(ctx)
        # A changed result says what was (or, in check mode, would be) done; ``ok_msg``
        # describes the host found already right, so it is only the unchanged message.
        msg = "; ".join(plan.changes) if plan.changed else plan.ok_msg
        if not ctx.check and plan.applies:
            affects = plan.stale_paths
            # The change command also re-reads the facts it makes stale.
            ctx.facts.arm(affects, soon)
            try:
                applied = task.apply(ctx, plan)
            except BaseException:
                ctx.facts.disarm()
                raise
            msg = applied or msg
            ctx.facts.settle(affects)
        status = Status.CHANGED if plan.changed else Status.OK
        if plan.then is Then.SKIP:
            status, msg = Status.SKIPPED, plan.ok_msg
        elif ctx.check and plan.changed:
            ctx.predicted += 1
            predicted = task.predict(plan)
            if predicted is None:
                ctx.facts.invalidate(plan.stale_paths)
            else:
                for fact, value in predicted:
                    ctx.facts.predict(fact, value)
        r = make_result(
            play,
            host,
            label,
            status,
            msg,
            origin=str(task.origin),
            diff=plan.diff,
            changes=list(plan.changes),
        )
    except UnreachableError as exc:
        r = make_result(
            play, host, label, Status.UNREACHABLE, exc.reason, exc=exc, origin=str(task.origin)
        )
    except (TaskFailed, PlaybookError, TemplateError, CdlibError) as exc:
        # cdlib's own errors (a router refusing an unknown group ...) are the task's
        # failure as they say it; only other exceptions are internal errors.
        r = make_result(
            play, host, label, Status.FAILED, str(exc), exc=exc, origin=str(task.origin)
        )
        if plan is not None and plan.affects is Affects.EVERYTHING:
            ctx.facts.invalidate(None)
    except Exception as exc:
        r = make_result(
            play,
            host,
            label,
            Status.FAILED,
            f"internal error in {task.kind}: {type(exc).__name__}: {exc}",
            exc=exc,
            origin=str(task.origin),
        )
        ctx.facts.invalidate(None)
    r.duration = time.monotonic() - t0
    r.handler = bool(handler_name)
    r.ignored = r.status is Status.FAILED and task.ignore_errors
    if task.no_log:
        r.msg = "output hidden (no_log)" if r.msg else ""
        r.diff = None
        r.changes = ["hidden (no_log)"] if r.changes else []
    return r
