"""Execution: one task on one host, from plan to a :class:`TaskResult`.

Check mode and real runs share this path: the task plans (reads and decides), then a
real run applies the plan while check mode records what the change would leave.

A real run may hold a change back in the host's :class:`Batch` (a task that declares
``batchable``): its commands then run in one remote command with the changes of the
next tasks, as long as those tasks plan from facts the held changes do not touch.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Sequence
from typing import NoReturn, cast

from cdlib.connections.base import Connection, UnreachableError
from cdlib.engine.errors import CdlibError, TaskFailed
from cdlib.engine.factcache import FactCache
from cdlib.engine.results import TaskResult
from cdlib.engine.task import Affects, DeferRefused, HostContext, Plan, Status, Task, Then
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
    batch: Batch | None = None,
) -> TaskResult | None:
    """Plan ``task`` on the host of ``ctx``, apply it unless in check mode, and report.

    Failures become the result's status: nothing but ``BaseException`` escapes.
    ``soon`` are facts the next task reads, re-read along with the change. With a
    ``batch``, a batchable change may be held there: the result is then ``None`` and the
    batch delivers it once the change ran.
    """
    t0 = time.monotonic()
    label = handler_name or task.label
    host = ctx.host
    plan: Plan | None = None
    held: list[tuple[str, bytes | None, bool]] | None = None
    try:
        plan = task.plan(ctx)
        # A changed result says what was (or, in check mode, would be) done; ``ok_msg``
        # describes the host found already right, so it is only the unchanged message.
        msg = "; ".join(plan.changes) if plan.changed else plan.ok_msg
        if not ctx.check and plan.applies:
            affects = plan.stale_paths
            applied: str | None = None
            if batch is not None and task.batchable and not task.ignore_errors:
                held, applied = batch.record(task, plan, ctx)
            if held is not None:
                # Later tasks plan as if the change were made: what it makes stale is
                # re-read (after the batch ran) when they ask for it; what it will leave
                # stands in for a reader that only asks what kind of thing is there.
                ctx.facts.invalidate(affects, shallow=plan.shallow)
                for fact, value in task.predict(plan) or ():
                    ctx.facts.expect(fact, value)
            else:
                # The change command also re-reads the facts it makes stale.
                ctx.facts.arm(affects, soon, shallow=plan.shallow)
                try:
                    applied = task.apply(ctx, plan)
                except BaseException:
                    ctx.facts.disarm()
                    raise
                ctx.facts.settle(affects, shallow=plan.shallow)
            msg = applied or msg
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
    except CdlibError as exc:
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
    _finish(r, task, handler_name, t0)
    if held is not None and batch is not None and plan is not None:
        batch.hold(task, r, held, plan)
        return None
    return r


def _finish(r: TaskResult, task: Task[Plan], handler_name: str, t0: float) -> None:
    r.duration = time.monotonic() - t0
    r.handler = bool(handler_name)
    r.ignored = r.status is Status.FAILED and task.ignore_errors
    if task.no_log:
        r.msg = "output hidden (no_log)" if r.msg else ""
        r.diff = None
        r.changes = ["hidden (no_log)"] if r.changes else []


class BatchStopped(BaseException):
    """A held change failed (its result is already delivered): the host stops here."""


class _NoConnection:
    """The connection a batched ``apply`` sees: any direct use means it must run alone."""

    def __getattr__(self, name: str) -> NoReturn:
        raise DeferRefused(name)


@dataclasses.dataclass
class _Held:
    task: Task[Plan]
    result: TaskResult
    commands: list[tuple[str, bytes | None, bool]]
    stale: list[str] | None
    shallow: bool


#: Takes a result in play order (emits it, notes handlers); False stops the host.
Deliver = Callable[[Task[Plan], TaskResult], bool]


class Batch:
    """Changes held on one host, run together in one remote command.

    Results are delivered in play order: a result of a task that came after a held
    change (an unchanged task, a skipped one) waits behind it. A failing held command
    delivers its task's failure, the commands after it do not run, and the results
    after it are dropped: the host stops there as it would have without the batch.
    """

    def __init__(self, conn: Connection, facts: FactCache, deliver: Deliver) -> None:
        self._conn = conn
        self._facts = facts
        self._deliver = deliver
        self._queue: list[_Held] = []
        #: Facts of the task about to run, re-read along with the batch.
        self.soon: Sequence[Fact[object]] = ()
        self._flushing = False
        facts.before_read = self._sync

    @property
    def last(self) -> TaskResult:
        """The result queued last."""
        return self._queue[-1].result

    def also(self, command: str) -> None:
        """Run ``command`` right after the change held last (it must not fail)."""
        self._queue[-1].commands.append((command, None, False))

    def record(
        self, task: Task[Plan], plan: Plan, ctx: HostContext
    ) -> tuple[list[tuple[str, bytes | None, bool]] | None, str | None]:
        """Run ``task.apply`` recording its commands: (commands, message) or (None, None)
        when the change must run alone (the batch is then run first)."""
        rec = dataclasses.replace(ctx, conn=cast(Connection, _NoConnection()), recording=[])
        try:
            msg = task.apply(rec, plan)
        except BatchStopped:
            raise
        except Exception:
            # Anything else (a transfer, an error) happens for real, after what came before.
            if not self.flush():
                raise BatchStopped from None
            return None, None
        return rec.recording, msg

    def hold(
        self,
        task: Task[Plan],
        result: TaskResult,
        commands: list[tuple[str, bytes | None, bool]],
        plan: Plan,
    ) -> None:
        """Hold a change made of ``commands``; its ``result`` is delivered once they ran."""
        self._queue.append(_Held(task, result, commands, plan.stale_paths, plan.shallow))

    def deliver(self, task: Task[Plan], result: TaskResult) -> bool:
        """Deliver a result that is not held, in order; False when the host stops."""
        if not self._queue:
            return self._deliver(task, result)
        stops = result.status is Status.UNREACHABLE or (
            result.status is Status.FAILED and not task.ignore_errors
        )
        if not stops:
            self._queue.append(_Held(task, result, [], [], True))
            return True
        # The changes before a failure were made before it.
        return self.flush() and self._deliver(task, result)

    def _sync(self) -> None:
        if self._queue and not self._flushing and not self.flush():
            raise BatchStopped

    def flush(self) -> bool:
        """Run the held changes and deliver every waiting result; False when the host stops."""
        queue, self._queue = self._queue, []
        held = [h for h in queue if h.commands]
        if not held:
            return all(self._deliver(h.task, h.result) for h in queue)
        t0 = time.monotonic()
        stale: list[str] | None = []
        for h in held:
            stale = None if stale is None or h.stale is None else stale + h.stale
        shallow = all(h.shallow for h in held)
        commands = [c for h in held for c in h.commands]
        script, stdin, marker = _script(commands)
        self._flushing = True
        try:
            self._facts.forget_expected()
            self._facts.arm(stale, self.soon, shallow=shallow)
            wrapped, fmarker = self._facts.wrap(script)
            res = self._conn.run(wrapped, stdin=stdin or None)
            if fmarker is not None:
                res = self._facts.unwrap(res, fmarker, script)
        except UnreachableError as exc:
            self._facts.disarm()
            return self._fail(queue, held[0], Status.UNREACHABLE, exc.reason, exc)
        except Exception as exc:
            self._facts.disarm()
            self._facts.invalidate(None)
            kind = held[0].task.kind
            msg = f"internal error in {kind}: {type(exc).__name__}: {exc}"
            return self._fail(queue, held[0], Status.FAILED, msg, exc)
        finally:
            self._flushing = False
        outs = _split(res.stdout, marker)
        errs = _split(res.stderr, marker)
        ran = len(outs) - 1  # commands that printed their end marker
        failed_at: int | None = None
        n = 0
        for h in held:
            n += len(h.commands)
            if failed_at is None and (ran < n or outs[n - 1][1] != 0):
                failed_at = held.index(h)
        share = (time.monotonic() - t0) / len(held)
        if failed_at is None:
            self._facts.settle(stale, shallow=shallow)
            for h in held:
                h.result.duration += share
            return all(self._deliver(h.task, h.result) for h in queue)
        self._facts.disarm()
        self._facts.invalidate(None)
        bad = held[failed_at]
        first = sum(len(h.commands) for h in held[:failed_at])
        code, out, err = res.exit_code, "", ""
        for k in range(first, first + len(bad.commands)):
            out, code = outs[k] if k < len(outs) else ("", res.exit_code)
            err = errs[k][0] if k < len(errs) else ""
            if code != 0:
                break
        if code == 0:  # the command did not get to print its marker
            code = res.exit_code or 255
            out, err = out or res.stdout, err or res.stderr
        detail = (err or out).strip()
        failure = TaskFailed(f"command failed (exit {code}): {detail}")
        return self._fail(queue, bad, Status.FAILED, str(failure), failure)

    def _fail(
        self, queue: list[_Held], bad: _Held, status: Status, msg: str, exc: BaseException
    ) -> bool:
        for h in queue:
            if h is bad:
                r = make_result(
                    h.result.play,
                    h.result.host,
                    h.result.task,
                    status,
                    msg,
                    origin=h.result.origin,
                    exc=exc,
                )
                _finish(r, h.task, "", time.monotonic())
                r.duration, r.index = h.result.duration, h.result.index
                self._deliver(h.task, r)
                return False
            if not self._deliver(h.task, h.result):
                return False
        return False


def _script(commands: list[tuple[str, bytes | None, bool]]) -> tuple[str, bytes, str]:
    """One sh script running ``commands`` in order, each with its own stdin, stopping at
    the first that fails; after each, a marker with its exit code on stdout and stderr."""
    marker = "@@cdlib-batch-" + secrets.token_hex(8)
    parts = []
    data = bytearray()
    for cmd, stdin, exact in commands:
        if stdin and exact:
            # It reads exactly its bytes when it succeeds, and a failure ends the batch:
            # the shared stdin needs no framing (two processes fewer per command).
            run = f"( {cmd}\n)"
            data += stdin
        elif stdin:
            # head -c reads exactly its share of the pipe; what the command leaves
            # unread is drained, so the next command's stdin starts where it should.
            run = f"head -c {len(stdin)} | {{ ( {cmd}\n); r=$?; cat >/dev/null; exit $r; }}"
            data += stdin
        else:
            run = f"( {cmd}\n) </dev/null"
        parts.append(
            f"{run}\nr=$?; printf '\\n%s %d\\n' '{marker}' \"$r\"; "
            f"printf '\\n%s\\n' '{marker}' >&2; [ \"$r\" -eq 0 ] || exit \"$r\""
        )
    return "\n".join(parts), bytes(data), marker


def _split(text: str, marker: str) -> list[tuple[str, int]]:
    """A batch's stdout (or stderr) cut at its markers: (text, exit code) per command,
    then what came after the last marker (code 0 on stderr, where markers carry none)."""
    out: list[tuple[str, int]] = []
    rest = text
    head = f"\n{marker}"
    while True:
        at = rest.find(head)
        if at < 0:
            out.append((rest, 0))
            return out
        nl = rest.find("\n", at + len(head))
        tail = rest[at + len(head) : nl if nl >= 0 else len(rest)].strip()
        out.append((rest[:at], int(tail) if tail.isdigit() else 0))
        rest = rest[nl + 1 :] if nl >= 0 else ""
