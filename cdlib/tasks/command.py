"""The ``command`` task: run a shell command, idempotent through creates/removes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cdlib.connections.base import CommandResult
from cdlib.connections.shell import q
from cdlib.engine.task import HostContext, Plan, Task, TaskFailed
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact


@dataclass
class Command(Task):
    """Run ``cmd`` with ``sh -c`` on the host.

    Options:
        cmd: the command line.
        creates: skip when this path exists (the command makes it).
        removes: skip when this path does not exist (the command removes it).
        chdir: directory to run in.
        env: environment variables for the command.
        stdin: text sent to the command's standard input.
        changed_when: ``False`` for commands that never change anything, or a callable
            taking the :class:`~cdlib.connections.CommandResult` and returning whether it
            changed something. Default: changed whenever it ran.
        failed_when: a callable taking the result and returning whether it failed.
            Default: a non-zero exit code fails.
        read_only: the command only reads; it also runs in check mode and reports ok.
        timeout: seconds before the command is abandoned (exit 124).

    Check mode reports "would run" as a change, unless ``creates``/``removes`` say it
    is not needed, ``changed_when`` is ``False`` or the command is ``read_only``.

    Example:
        ```python
        play.task(tasks.command("make install", chdir="/srv/app", creates="/usr/local/bin/app"))
        play.task(tasks.command("app --version", read_only=True))
        ```
    """

    cmd: str
    creates: str | None = None
    removes: str | None = None
    chdir: str | None = None
    env: Mapping[str, str] | None = None
    stdin: str | None = None
    changed_when: bool | Callable[[CommandResult], bool] | None = None
    failed_when: Callable[[CommandResult], bool] | None = None
    read_only: bool = False
    timeout: float | None = None

    templated = ("cmd", "creates", "removes", "chdir", "env", "stdin")
    kind = "command"

    def validate(self) -> None:
        """Reject an empty command."""
        if not self.cmd.strip():
            raise self.error("option 'cmd' is empty")

    def describe(self) -> str:
        """``command <first 50 chars>``."""
        short = self.cmd.strip().splitlines()[0] if self.cmd.strip() else ""
        return f"command {short[:50]}"

    def facts(self) -> list[Fact]:
        """The creates/removes paths."""
        return [PathFact(p) for p in (self.creates, self.removes) if p]

    def plan(self, ctx: HostContext) -> Plan:
        """Decide whether the command must run; read-only commands run here."""
        if self.creates:
            st: FileState = ctx.fact(PathFact(self.creates))
            if st.exists:
                return Plan(ok_msg=f"{self.creates} exists", skipped=True)
        if self.removes:
            st = ctx.fact(PathFact(self.removes))
            if not st.exists:
                return Plan(ok_msg=f"{self.removes} does not exist", skipped=True)
        if self.read_only:
            try:
                res = self._execute(ctx)
            except TaskFailed as exc:
                if ctx.check and ctx.predicted:
                    # Earlier changes were only predicted, so what this command reads
                    # may not exist yet; a failure here says nothing about a real run.
                    return Plan(
                        skip_reason=f"check mode: would run after predicted changes ({exc})",
                        done=True,
                    )
                raise
            return Plan(ok_msg=_summary(res), done=True, data=res)
        if self.changed_when is False:
            # Never reported as a change: a real run executes it, check mode predicts ok.
            return Plan(
                ok_msg="would run (reports no change)", always_apply=True, affects_everything=True
            )
        return Plan(changes=[f"run: {self.cmd.strip()[:200]}"], affects_everything=True)

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Run it and judge changed/failed."""
        res = self._execute(ctx)
        if callable(self.changed_when) and not self.changed_when(res):
            plan.changes = []
        return _summary(res)

    def _execute(self, ctx: HostContext) -> CommandResult:
        cmd = self.cmd
        if self.chdir:
            cmd = f"cd {q(self.chdir)} && {cmd}"
        res = ctx.conn.run(
            cmd,
            stdin=self.stdin.encode() if self.stdin is not None else None,
            env=dict(self.env) if self.env else None,
            timeout=self.timeout,
        )
        failed = self.failed_when(res) if self.failed_when else not res.ok
        if failed:
            detail = (res.stderr.strip() or res.stdout.strip())[-2000:]
            raise TaskFailed(
                f"exit {res.exit_code}: {detail}" if detail else f"exit {res.exit_code}"
            )
        return res


def _summary(res: CommandResult) -> str:
    out = res.stdout.strip()
    return out[-500:] if out else f"exit {res.exit_code}"


#: Lowercase alias, as playbooks usually spell tasks.
command = Command
