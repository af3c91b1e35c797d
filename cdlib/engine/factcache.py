"""Per-host fact cache: batched reads, invalidated when a task changes a thing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar, cast

from cdlib.connections.base import CommandResult, Connection
from cdlib.facts.base import Fact, batch_script, split_batch

T = TypeVar("T")

#: Facts read in one remote command at most; keeps a batch's output bounded.
MAX_BATCH = 256


class FactCache:
    """Caches facts of one host for a run.

    On a miss it reads the missing fact together with every *upcoming* fact (those the
    remaining tasks declared), so a no-change run costs one round trip for all facts.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._values: dict[Hashable, object] = {}
        self._paths: dict[Hashable, str | None] = {}
        self._upcoming: list[Fact[object]] = []
        self._lock = threading.Lock()
        # Facts re-read at the end of the change command itself (see arm/wrap/settle).
        self._armed: list[Fact[object]] = []
        self._fresh: dict[Hashable, tuple[object, str | None, bool]] = {}
        self._fresh_at = -1
        self._volatile: set[Hashable] = set()
        #: Runs the host's batched changes that are still waiting (set by the engine's
        #: batch, see ``engine/execute.py``), before anything reads the host.
        self.before_read: Callable[[], None] | None = None
        #: Keys whose value is what a change still held in a batch will leave (see expect).
        self._expected: set[Hashable] = set()

    def sync(self) -> None:
        """Apply the changes still waiting in a batch, so what is read next sees them."""
        hook = self.before_read
        if hook is not None:
            hook()

    def predict(self, fact: Fact[T], value: T) -> None:
        """Check mode: record the state a planned change would leave, so later tasks
        are judged as a real run would judge them."""
        with self._lock:
            self._values[fact.key] = value
            self._expected.discard(fact.key)
            self._paths[fact.key] = fact.path

    def expect(self, fact: Fact[T], value: T) -> None:
        """A real run: the state a change held in a batch will leave.

        Only a reader that asks for it (``get(fact, expected=True)``, which looks at what
        kind of thing is there) takes it; any other read runs the batch first and reads
        the host, so what a task compares stays exact.
        """
        with self._lock:
            self._values[fact.key] = value
            self._paths[fact.key] = fact.path
            self._expected.add(fact.key)

    def forget_expected(self) -> None:
        """The held changes are about to run: drop what stood in for their results."""
        with self._lock:
            for key in self._expected:
                self._values.pop(key, None)
            self._expected.clear()

    def set_upcoming(self, facts: Iterable[Fact[object]]) -> None:
        """Facts likely needed soon; read along with the next miss."""
        self._upcoming = list(facts)

    def get(self, fact: Fact[T], *, expected: bool = False) -> T:
        """The fact's value, reading it (and upcoming ones) from the host when missing.

        ``expected``: the state a change still held in a batch will leave will do.
        """
        with self._lock:
            # A key names one fact, so the value stored under it is what that fact parses to.
            if fact.key in self._values and (expected or fact.key not in self._expected):
                return cast(T, self._values[fact.key])
        # A miss reads the host: changes still waiting in a batch go first (and the
        # facts they make stale come back with them, so look again).
        self.sync()
        with self._lock:
            if fact.key in self._values and fact.key not in self._expected:
                return cast(T, self._values[fact.key])
            wanted: dict[Hashable, Fact[object]] = {fact.key: fact}
            for f in self._upcoming:
                if len(wanted) >= MAX_BATCH:
                    break
                if f.key not in self._values:
                    wanted.setdefault(f.key, f)
            self._gather(list(wanted.values()))
            return cast(T, self._values[fact.key])

    def _gather(self, facts: list[Fact[object]]) -> None:
        script, marker = batch_script(facts)
        res = self._conn.run(script)
        for f, (out, rc) in zip(facts, split_batch(res.stdout, marker, len(facts)), strict=True):
            self._values[f.key] = f.parse(out, rc)
            self._expected.discard(f.key)
            self._paths[f.key] = f.path
            if f.volatile:
                self._volatile.add(f.key)

    # -- facts re-read by the change command (saves the round trip after a change) -----
    def arm(
        self,
        paths: Iterable[str] | None,
        soon: Iterable[Fact[object]] = (),
        *,
        shallow: bool = False,
    ) -> None:
        """A task is about to change ``paths`` (everything when None) with ``HostContext.run``.

        The upcoming facts those changes make stale (and those not read yet) are then read
        again by the change command itself, after it ran, instead of by a round trip of
        their own when the next task asks for them. Volatile facts (command output) are
        re-read only when they are among ``soon`` (the next task's facts): running a
        command after every change of a first run would cost more than it saves.
        ``shallow``: the change touches the paths themselves, not what is under them.
        """
        prefixes = None if paths is None else [p.rstrip("/") for p in paths]
        next_keys = {f.key for f in soon}
        wanted: dict[Hashable, Fact[object]] = {}
        with self._lock:
            for f in self._upcoming:
                if len(wanted) >= MAX_BATCH:
                    break
                if f.volatile and f.key not in next_keys:
                    continue
                stale = (
                    f.key not in self._values
                    or prefixes is None
                    or f.volatile
                    or (f.path is not None and _under(f.path, prefixes, shallow))
                )
                if stale:
                    wanted.setdefault(f.key, f)
            self._armed = list(wanted.values())
            self._fresh = {}
            self._fresh_at = -1

    def disarm(self) -> None:
        """Forget armed facts and values read by a change command."""
        with self._lock:
            self._armed = []
            self._fresh = {}
            self._fresh_at = -1

    def wrap(self, command: str) -> tuple[str, str | None]:
        """``command`` followed by a read of the armed facts; (script, marker or None).

        The command runs in a subshell, so its ``exit``, ``set -e`` and traps stay its
        own, and the script exits with the command's exit code.
        """
        with self._lock:
            facts = list(self._armed)
        if not facts:
            return command, None
        script, marker = batch_script(facts)
        return f"( {command}\n); __cdlib_rc=$?; echo; {script}\nexit $__cdlib_rc", marker

    def unwrap(self, res: CommandResult, marker: str, command: str) -> CommandResult:
        """Split a wrapped command's output: keep the fact values, return the command's own."""
        cut = res.stdout.find(f"\n{marker} 0\n")
        if cut < 0:  # it did not get that far (timeout, lost connection)
            return CommandResult(command, res.exit_code, res.stdout, res.stderr)
        with self._lock:
            facts = list(self._armed)
            sections = split_batch(res.stdout[cut + 1 :], marker, len(facts))
            fresh = {}
            for f, (out, rc) in zip(facts, sections, strict=True):
                if rc == 255 and not out:
                    continue  # section missing
                fresh[f.key] = (f.parse(out, rc), f.path, f.volatile)
            self._fresh = fresh
            self._fresh_at = self._conn.stats.round_trips
        return CommandResult(command, res.exit_code, res.stdout[:cut], res.stderr)

    def settle(self, paths: Iterable[str] | None, *, shallow: bool = False) -> None:
        """After a change: forget what it made stale, then keep what its command re-read.

        Values re-read by a command are kept only when nothing ran on the host after it.
        """
        self.invalidate(paths, shallow=shallow)
        with self._lock:
            if self._fresh and self._fresh_at == self._conn.stats.round_trips:
                for key, (value, path, volatile) in self._fresh.items():
                    self._values[key] = value
                    self._expected.discard(key)
                    self._paths[key] = path
                    if volatile:
                        self._volatile.add(key)
            self._armed = []
            self._fresh = {}
            self._fresh_at = -1

    def invalidate(self, paths: Iterable[str] | None = None, *, shallow: bool = False) -> None:
        """Forget facts about ``paths`` and everything under them; all facts when None.

        ``shallow``: only facts about the paths themselves (a ``mkdir`` or ``chmod`` of a
        directory leaves what is under it as it was).

        Volatile facts (command output) go whatever the paths: a change anywhere may
        change what a command prints.
        """
        with self._lock:
            if paths is None:
                self._values.clear()
                return
            for key in self._volatile:
                self._values.pop(key, None)
            prefixes = [p.rstrip("/") for p in paths]
            for key, path in list(self._paths.items()):
                if path is not None and _under(path, prefixes, shallow):
                    self._values.pop(key, None)


def _under(path: str, prefixes: list[str], shallow: bool = False) -> bool:
    if shallow:
        return path.rstrip("/") in prefixes
    return any(path == pre or path.startswith(pre + "/") for pre in prefixes)
