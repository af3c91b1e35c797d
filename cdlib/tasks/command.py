"""The ``command`` task: run a shell command, idempotent through creates/removes."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

from cdlib.connections.base import CommandResult
from cdlib.connections.shell import q
from cdlib.engine.task import Affects, HostContext, Plan, Task, TaskFailed, Then, option
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact


@dataclass
class Command(Task[Plan]):
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
        prefetch: (read-only commands) the command may run with the batched fact read,
            ahead of its turn: when no earlier task changed anything on the host, its
            output from there is used and it costs no round trip of its own; after a
            change it runs again with that change's command. Only for cheap commands
            whose output depends on nothing but the host's state (not with ``stdin``,
            ``timeout``, ``failed_when`` or ``run_once``); a failing prefetched command is
            run again at its turn, so errors read as usual.
        timeout: seconds before the command is abandoned (exit 124).

    Check mode reports "would run" as a change, unless ``creates``/``removes`` say it
    is not needed, ``changed_when`` is ``False`` or the command is ``read_only``.

    Example:
        ```python
        play.task(tasks.command("make install", chdir="/srv/app", creates="/usr/local/bin/app"))
        play.task(tasks.command("app --version", read_only=True))
        ```
    """

    cmd: str = field(metadata=option(templated=True))
    creates: str | None = field(default=None, metadata=option(templated=True))
    removes: str | None = field(default=None, metadata=option(templated=True))
    chdir: str | None = field(default=None, metadata=option(templated=True))
    env: Mapping[str, str] | None = field(default=None, metadata=option(templated=True))
    stdin: str | None = field(default=None, metadata=option(templated=True))
    changed_when: bool | Callable[[CommandResult], bool] | None = None
    failed_when: Callable[[CommandResult], bool] | None = None
    read_only: bool = False
    prefetch: bool = False
    timeout: float | None = None

    kind = "command"

    def validate(self) -> None:
        """Reject an empty command."""
        if not self.cmd.strip():
            raise self.error("option 'cmd' is empty")
        if self.prefetch:
            if not self.read_only:
                raise self.error("option 'prefetch' needs read_only=True")
            bad = [
                n
                for n, v in (
                    ("stdin", self.stdin),
                    ("timeout", self.timeout),
                    ("failed_when", self.failed_when),
                )
                if v is not None
            ] + (["run_once"] if self.run_once else [])
            if bad:
                raise self.error(f"option 'prefetch' cannot be used with {', '.join(bad)}")

    def describe(self) -> str:
        """``command <first 50 chars>``."""
        short = self.cmd.strip().splitlines()[0] if self.cmd.strip() else ""
        return f"command {short[:50]}"

    def facts(self) -> list[Fact[object]]:
        """The creates/removes paths."""
        out: list[Fact[object]] = [PathFact(p) for p in (self.creates, self.removes) if p]
        if self.prefetch:
            out.append(_Output(self._command_line()))
        return out

    def plan(self, ctx: HostContext) -> Plan:
        """Decide whether the command must run; read-only commands run here."""
        if self.creates:
            st: FileState = ctx.fact(PathFact(self.creates))
            if st.exists:
                return Plan(ok_msg=f"{self.creates} exists")
        if self.removes:
            st = ctx.fact(PathFact(self.removes))
            if not st.exists:
                return Plan(ok_msg=f"{self.removes} does not exist")
        if self.read_only:
            if self.prefetch:
                rc, out = ctx.fact(_Output(self._command_line()))
                if rc == 0:
                    res = CommandResult(self._display(), 0, out, "")
                    return Plan(ok_msg=_summary(res), then=Then.DONE)
                # Failed: run it at its turn for the real exit code and stderr.
            try:
                res = self._execute(ctx)
            except TaskFailed as exc:
                if ctx.check and ctx.predicted:
                    # Earlier changes were only predicted, so what this command reads
                    # may not exist yet; a failure here says nothing about a real run.
                    return Plan(
                        ok_msg=f"check mode: would run after predicted changes ({exc})",
                        then=Then.SKIP,
                    )
                raise
            return Plan(ok_msg=_summary(res), then=Then.DONE)
        if self.changed_when is False:
            # Never reported as a change: a real run executes it, check mode predicts ok.
            return Plan(
                ok_msg="would run (reports no change)", then=Then.ALWAYS, affects=Affects.EVERYTHING
            )
        return Plan(changes=[f"run: {self.cmd.strip()[:200]}"], affects=Affects.EVERYTHING)

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """Run it and judge changed/failed."""
        res = self._execute(ctx)
        if callable(self.changed_when) and not self.changed_when(res):
            plan.changes = []
        return _summary(res)

    def _display(self) -> str:
        return f"cd {q(self.chdir)} && {self.cmd}" if self.chdir else self.cmd

    def _command_line(self) -> str:
        """The command as one sh line with its environment, as a connection would run it."""
        env = " ".join(f"{k}={q(v)}" for k, v in (self.env or {}).items())
        return (f"export {env}; " if env else "") + self._display()

    def _execute(self, ctx: HostContext) -> CommandResult:
        cmd = self._display()
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


class _Output(Fact[tuple[int, str]]):
    """The exit code and stdout of a read-only command (``prefetch``); stale after any change."""

    volatile = True

    def __init__(self, line: str) -> None:
        self.line = line

    @property
    def key(self) -> Hashable:
        """Cache identity: the command line."""
        return ("command", self.line)

    def command(self) -> str:
        """The command itself, with no stdin."""
        return f"{{ {self.line}\n}} </dev/null"

    def parse(self, output: str, exit_code: int) -> tuple[int, str]:
        """(exit code, stdout)."""
        return exit_code, output


def _summary(res: CommandResult) -> str:
    out = res.stdout.strip()
    return out[-500:] if out else f"exit {res.exit_code}"


#: Lowercase alias, as playbooks usually spell tasks.
command = Command
