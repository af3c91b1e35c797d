"""The ``service`` task: a long-running program under systemd or supervisord."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Self

from cdlib.engine.errors import TaskFailed
from cdlib.engine.secrets import Secret
from cdlib.engine.task import HostContext, Plan, Prediction, Task, absolute_path, option
from cdlib.engine.templating import Templar
from cdlib.facts.base import Fact
from cdlib.facts.files import FileState, PathFact
from cdlib.facts.services import (
    ProgramState,
    SupervisorFact,
    SupervisorStatus,
    UnitFact,
    UnitState,
)
from cdlib.services import supervisor_ini as ini
from cdlib.services import supervisord, systemd
from cdlib.services.names import service_name_problem

#: Options that go into supervisord's config files (checked by writing them).
_CONFIG_OPTIONS = (
    "name",
    "command",
    "directory",
    "user",
    "environment",
    "supervisor_conf",
    "supervisor_run",
)

_STEP_WORDS = {
    "write-unit": "write unit file",
    "daemon-reload": "systemctl daemon-reload",
    "write-main": "write supervisord config",
    "start-daemon": "start supervisord",
    "write-program": "write program config",
    "update": "load program config",
}


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


def _file_state(text: str, mode: str = "0644") -> FileState:
    data = text.encode()
    return FileState("file", sha256=_sha(text), size=len(data), content=data, mode=mode)


def _service_name(name: str, value: str) -> str | None:
    """:data:`~cdlib.engine.task.OptionCheck`: the one service-name rule."""
    return service_name_problem(value)


@dataclass(kw_only=True)
class SystemdPlan(Plan):
    """A systemd service plan: the wanted state, its steps and the unit as found."""

    want: systemd.SystemdWant
    steps: list[str]
    before: UnitState


@dataclass(kw_only=True)
class SupervisordPlan(Plan):
    """A supervisord service plan: its steps, the config texts and the status as found."""

    want: supervisord.SupervisorWant
    steps: list[str]
    main: str
    program: str | None
    before: SupervisorStatus


@dataclass
class Service(Task[SystemdPlan | SupervisordPlan]):
    """Ensure a service is defined, enabled and started / stopped / restarted / reloaded.

    Options:
        name: the unit (``app`` means ``app.service``) or supervisord program name;
            letters, digits and ``_ . @ -`` only (not starting with ``-`` or ``.``).
        state: ``started``, ``stopped``, ``restarted`` (always restarts: use it in a
            handler), ``reloaded`` (systemd ``reload``; supervisord sends SIGHUP), or
            ``None`` to leave the run state alone.
        enabled: systemd: enabled at boot; supervisord: the program's ``autostart``.
        backend: ``systemd`` (production; needs systemd as PID 1) or ``supervisord``.
        unit: systemd only: a jinja2 template (relative to the playbook) for the unit
            file, written to ``unit_dir/<unit>``; ``daemon-reload`` runs only when it
            changed. Without it the unit must exist already.
        unit_dir: where unit files go (default ``/etc/systemd/system``).
        command, directory, user, environment, start_secs, stop_signal: supervisord only:
            the ``[program:name]`` section (without ``command`` the program must exist).
        supervisor_conf: the private supervisord's config file (programs go into
            ``supervisor.d/`` beside it); it is written and the daemon started when needed.
        supervisor_run: directory for its socket, pid file and logs.
        vars: extra variables for the ``unit`` template.

    Check mode reports each step a real run would take: writing the unit or program
    file, ``daemon-reload``, starting supervisord, enable/disable, start/stop/restart/reload.

    Example:
        ```python
        play.task(tasks.service("shop", state="started", backend="supervisord",
                          command="/srv/shop/current/bin/start"))
        ```
    """

    name: str = field(metadata=option(templated=True, check=_service_name))
    state: Literal["started", "stopped", "restarted", "reloaded"] | None = None
    enabled: bool | None = None
    backend: Literal["systemd", "supervisord"] = "systemd"
    unit: str | None = None
    unit_dir: str = field(
        default="/etc/systemd/system", metadata=option(templated=True, check=absolute_path)
    )
    command: str | None = field(default=None, metadata=option(templated=True))
    directory: str | None = field(default=None, metadata=option(templated=True))
    user: str | None = field(default=None, metadata=option(templated=True))
    environment: Mapping[str, object] = field(metadata=option(templated=True), default_factory=dict)
    start_secs: int = 1
    stop_signal: str = "TERM"
    supervisor_conf: str = field(
        default="/etc/cdlib-host/supervisord.conf",
        metadata=option(templated=True, check=absolute_path),
    )
    supervisor_run: str = field(
        default="/var/lib/cdlib/supervisor", metadata=option(templated=True, check=absolute_path)
    )
    vars: Mapping[str, object] | None = None
    _unit_text: str | None = field(default=None, init=False, repr=False)

    kind = "service"

    def validate(self) -> None:
        """Backend-specific options only with their backend; something to do."""
        sysd = self.backend == "systemd"
        if sysd and (self.command or self.directory or self.user or self.environment):
            raise self.error(
                "options 'command', 'directory', 'user', 'environment' are for "
                "backend='supervisord'; for systemd put them in the unit template"
            )
        if not sysd and self.unit is not None:
            raise self.error("option 'unit' is for backend='systemd'")
        if self.state is None and self.enabled is None and not (self.unit or self.command):
            raise self.error("nothing to do: give state, enabled, unit or command")
        if not sysd and not any(self.pending(o) for o in _CONFIG_OPTIONS):
            # A value the config cannot hold fails here (again on each host's rendered
            # values), before any host is touched.
            self._configs()

    def _configs(self) -> tuple[str, str | None]:
        """supervisord's main config and the program file (``None`` without ``command``)."""
        try:
            main = supervisord.main_config(self.supervisor_conf, self.supervisor_run)
            prog = self._program()
            if prog is None:
                ini.name("option 'name'", self.name)  # it still names the program's file
                return main, None
            return main, supervisord.program_config(prog, self.supervisor_run)
        except ini.IniValueError as exc:
            raise self.error(str(exc)) from None

    def describe(self) -> str:
        """``service name state``."""
        return f"service {self.name}" + (f" {self.state}" if self.state else "")

    @property
    def label(self) -> str:
        """Always the description: ``name`` is the service's name here, not a title."""
        return self.describe()

    # -- systemd ------------------------------------------------------------
    def _unit(self) -> str:
        return systemd.unit_name(self.name)

    def _unit_path(self) -> str:
        return f"{self.unit_dir.rstrip('/')}/{self._unit()}"

    # -- supervisord --------------------------------------------------------
    def _program(self) -> supervisord.Program | None:
        if self.command is None:
            return None
        return supervisord.Program(
            name=self.name,
            command=self.command,
            directory=self.directory,
            user=self.user,
            environment={
                k: v.reveal() if isinstance(v, Secret) else str(v)
                for k, v in self.environment.items()
            },
            autostart=self.enabled is not False,
            start_secs=self.start_secs,
            stop_signal=self.stop_signal,
        )

    def facts(self) -> list[Fact[object]]:
        """Unit file + ``systemctl show``, or supervisord config files + status."""
        if self.backend == "systemd":
            out: list[Fact[object]] = [UnitFact(self._unit())]
            if self.unit is not None:
                out.append(PathFact(self._unit_path()))
            return out
        return [
            PathFact(self.supervisor_conf),
            PathFact(supervisord.program_path(self.supervisor_conf, self.name)),
            SupervisorFact(self.supervisor_conf),
        ]

    def prepare(self, variables: Mapping[str, object], templar: Templar) -> Self:
        """Render the unit template for this host, or check the supervisord configs can be
        written with this host's values (local work, before any host is touched)."""
        t = super().prepare(variables, templar)
        src = t.unit
        if src is None:
            return t
        tvars = {**variables, **(t.vars or {})}
        t._unit_text = templar.render_file(src, tvars)
        return t

    def plan(self, ctx: HostContext) -> SystemdPlan | SupervisordPlan:
        """Steps the backend would take."""
        if self.backend == "systemd":
            return self._plan_systemd(ctx)
        return self._plan_supervisord(ctx)

    def _plan_systemd(self, ctx: HostContext) -> SystemdPlan:
        st: UnitState = ctx.fact(UnitFact(self._unit()))
        if not st.available:
            raise TaskFailed(
                f"systemd is not running on {ctx.host} ({st.error or 'no systemd PID 1'}); "
                "use backend='supervisord' on hosts and containers without systemd"
            )
        changed = False
        if self._unit_text is not None:
            f: FileState = ctx.fact(PathFact(self._unit_path()))
            changed = f.sha256 != _sha(self._unit_text)
        elif st.load_state == "not-found":
            raise TaskFailed(f"unit {self._unit()} does not exist on {ctx.host}; give unit=...")
        want = systemd.SystemdWant(
            self._unit(),
            self.state,
            self.enabled,
            self._unit_path() if self._unit_text is not None else None,
            changed,
        )
        steps = systemd.decide(want, st)
        return SystemdPlan(
            changes=[_STEP_WORDS.get(s, f"{s} {self._unit()}") for s in steps],
            affects=[self._unit_path()],
            want=want,
            steps=steps,
            before=st,
            ok_msg=st.active_state or "ok",
        )

    def _plan_supervisord(self, ctx: HostContext) -> SupervisordPlan:
        conf = self.supervisor_conf
        main, prog_text = self._configs()
        main_st: FileState = ctx.fact(PathFact(conf))
        prog_st: FileState = ctx.fact(PathFact(supervisord.program_path(conf, self.name)))
        status: SupervisorStatus = ctx.fact(SupervisorFact(conf))
        main_changed = main_st.sha256 != _sha(main)
        # A file from before programs were private is rewritten 0600 (same content).
        prog_changed = prog_text is not None and (
            prog_st.sha256 != _sha(prog_text) or prog_st.mode != supervisord.PROGRAM_MODE
        )
        if prog_text is None and not prog_st.exists and self.name not in status.programs:
            raise TaskFailed(
                f"supervisord program {self.name!r} is not defined on {ctx.host}; give command=..."
            )
        want = supervisord.SupervisorWant(
            self.name,
            self.state,
            conf,
            self.supervisor_run,
            main_changed,
            prog_changed,
            prog_text is not None,
            start_secs=self.start_secs,
        )
        steps = supervisord.decide(want, status)
        p = status.programs.get(self.name)
        return SupervisordPlan(
            changes=[_STEP_WORDS.get(s, f"{s} {self.name}") for s in steps],
            affects=[conf, supervisord.program_path(conf, self.name)],
            want=want,
            steps=steps,
            main=main,
            program=prog_text,
            before=status,
            ok_msg=p.state if p else "ok",
        )

    def predict(self, plan: SystemdPlan | SupervisordPlan) -> list[Prediction] | None:
        """Check mode: config files as written, the daemon up, the program's run state."""
        if isinstance(plan, SystemdPlan):
            steps, st = plan.steps, plan.before
            active = st.active if not ({"start", "restart", "reload"} & set(steps)) else True
            if "stop" in steps:
                active = False
            enabled = st.enabled if self.enabled is None else self.enabled
            after = dataclasses.replace(
                st,
                load_state="loaded",
                active_state="active" if active else "inactive",
                unit_file_state="enabled" if enabled else "disabled",
                need_daemon_reload=False,
            )
            out: list[Prediction] = [(UnitFact(self._unit()), after)]
            if self._unit_text is not None:
                out.append((PathFact(self._unit_path()), _file_state(self._unit_text)))
            return out
        ssteps, main, prog_text, status = plan.steps, plan.main, plan.program, plan.before
        programs = dict(status.programs)
        prev = programs.get(self.name)
        running = prev is not None and prev.running
        if {"start", "restart", "reload"} & set(ssteps) or (
            # supervisord starts an added or changed program when it is autostart.
            "update" in ssteps and self.enabled is not False
        ):
            running = True
        if "stop" in ssteps:
            running = False
        programs[self.name] = ProgramState(self.name, "RUNNING" if running else "STOPPED")
        result: list[Prediction] = [
            (PathFact(self.supervisor_conf), _file_state(main)),
            (SupervisorFact(self.supervisor_conf), SupervisorStatus(True, True, programs)),
        ]
        if prog_text is not None:
            path = supervisord.program_path(self.supervisor_conf, self.name)
            result.append((PathFact(path), _file_state(prog_text, supervisord.PROGRAM_MODE)))
        return result

    def apply(self, ctx: HostContext, plan: SystemdPlan | SupervisordPlan) -> str | None:
        """One script with every step."""
        try:
            if isinstance(plan, SystemdPlan):
                script = systemd.script(plan.want, plan.steps)
                ctx.run(script, stdin=(self._unit_text or "").encode())
            else:
                text, data = supervisord.script(plan.want, plan.steps, plan.main, plan.program)
                ctx.run(text, stdin=data, timeout=120)
        finally:
            # Statuses change with every step, whatever path they are about.
            ctx.facts.invalidate(None)
        return None


#: Lowercase alias, as playbooks usually spell tasks.
service = Service
