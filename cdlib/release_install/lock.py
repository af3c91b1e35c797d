"""The per-app deploy lock: a lock file on the host holding its owner as JSON.

Taking it is an ``O_EXCL`` create (``set -C`` / noclobber), so of two runs exactly one wins.
The file holds ``{"user", "controlhost", "pid", "since", "token"}`` and what tells the
control machine apart from another with the same hostname (``boot_id``, ``machine_id``,
``pidns``: see :class:`Machine`); releasing removes it only when it still holds our token,
so a run never frees a lock it does not own.
Waiting happens on the host in a bounded loop, so it costs one round trip.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cdlib.connections.shell import q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext
from cdlib.facts.base import Fact, batch_script, split_batch

#: Exit code of the acquire snippet when the lock stayed taken for the whole timeout.
HELD_EXIT = 75
#: Seconds between two tries on the host.
POLL = 0.2


@dataclass(frozen=True)
class LockOwner:
    """Who holds a deploy lock (as read from the lock file)."""

    user: str
    controlhost: str
    pid: int
    since: str
    token: str = ""
    boot_id: str = ""
    machine_id: str = ""
    pidns: str = ""

    def describe(self) -> str:
        """``user@controlhost pid 123 since 2026-01-01T00:00:00Z``."""
        return f"{self.user}@{self.controlhost} pid {self.pid} since {self.since}"

    def to_json(self) -> str:
        """One-line JSON as stored in the lock file."""
        return json.dumps(
            {
                "user": self.user,
                "controlhost": self.controlhost,
                "pid": self.pid,
                "since": self.since,
                "token": self.token,
                "boot_id": self.boot_id,
                "machine_id": self.machine_id,
                "pidns": self.pidns,
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class Machine:
    """Which machine, boot and pid namespace a control process runs in.

    The hostname alone does not tell two machines (or two containers, or two pid
    namespaces on one machine) apart, and a pid means something only in its own pid
    namespace. Empty fields are unknown (not Linux, unreadable, an old lock file). The
    two ids are kept hashed (the same on every run of the machine, not the raw ids).
    """

    hostname: str
    boot_id: str = ""  # from /proc/sys/kernel/random/boot_id: new at each boot
    machine_id: str = ""  # from /etc/machine-id: stays across reboots
    pidns: str = ""  # /proc/self/ns/pid, e.g. "pid:[4026531836]"


def _read_id(path: str) -> str:
    """The id in ``path``, hashed: machine-id(5) asks not to expose the raw id."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            raw = fh.read(200).strip()
    except OSError:
        return ""
    return hashlib.sha256(f"cdlib deploy lock {raw}".encode()).hexdigest()[:32] if raw else ""


def this_machine() -> Machine:
    """The :class:`Machine` of this process."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return Machine(
        hostname=socket.gethostname(),
        boot_id=_read_id("/proc/sys/kernel/random/boot_id"),
        machine_id=_read_id("/etc/machine-id") or _read_id("/var/lib/dbus/machine-id"),
        pidns=pidns,
    )


def parse_owner(text: str) -> LockOwner | None:
    """Parse a lock file's content; ``None`` for an empty file (being written right now)."""
    text = text.strip()
    if not text:
        return None
    try:
        d = json.loads(text)
        return LockOwner(
            str(d["user"]),
            str(d["controlhost"]),
            int(d["pid"]),
            str(d["since"]),
            str(d["token"]),
            # Absent from lock files of older versions: unknown, judged conservatively.
            boot_id=str(d.get("boot_id") or ""),
            machine_id=str(d.get("machine_id") or ""),
            pidns=str(d.get("pidns") or ""),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return LockOwner("unknown", "unknown", 0, "unknown", "")


def new_owner() -> LockOwner:
    """An owner record for this process, with a fresh token."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    here = this_machine()
    return LockOwner(
        user=user,
        controlhost=here.hostname,
        pid=os.getpid(),
        since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        token=secrets.token_hex(8),
        boot_id=here.boot_id,
        machine_id=here.machine_id,
        pidns=here.pidns,
    )


def acquire_command(lock_path: str, owner: LockOwner, timeout: float) -> str:
    """Shell snippet: create ``lock_path`` exclusively, retrying for ``timeout`` seconds.

    Exits :data:`HELD_EXIT` printing the holder's JSON when the lock stays taken.
    """
    tries = max(1, int(timeout / POLL) + 1)
    d = os.path.dirname(lock_path)
    # The owner is written to a private temp file first, then hard-linked to the lock
    # name: link() fails when the name exists (an O_EXCL create), and the lock never
    # exists half-written (a full disk fails the write, not the lock).
    return (
        f"mkdir -p -- {q(d)} && l={q(lock_path)} && o={q(owner.to_json())} && "
        't="$l.$$.tmp" && '
        # coreutils printf, not the shell's: dash's builtin reports a full disk as
        # "I/O error", coreutils names it ("No space left on device").
        '{ env printf \'%s\\n\' "$o" > "$t" || { rm -f -- "$t"; exit 1; }; } && n=0 && '
        'until ln -- "$t" "$l" 2>/dev/null; do '
        f'n=$((n+1)); if [ $n -ge {tries} ]; then rm -f -- "$t"; cat -- "$l" 2>/dev/null; '
        f'exit {HELD_EXIT}; fi; sleep {POLL}; done; rm -f -- "$t"'
    )


def release_command(lock_path: str, owner: LockOwner) -> str:
    """Shell snippet: remove ``lock_path`` only when it still holds ``owner``'s token."""
    lock = q(lock_path)
    return f"if grep -qF -- {q(owner.token)} {lock} 2>/dev/null; then rm -f -- {lock}; fi"


def held_message(app: str, host: str, lock_path: str, text: str, waited: float) -> str:
    """The error for a lock that stayed taken: who holds it and since when."""
    holder = parse_owner(text)
    who = holder.describe() if holder else "a run that is taking it right now"
    return (
        f"deploy lock of app {app!r} on {host} is held by {who} ({lock_path}); "
        f"waited {waited:g}s. If that run is gone, remove {lock_path} on {host}."
    )


#: Decides whether a holder is stale (its run is gone) and its lock may be broken.
StaleCheck = Callable[[LockOwner], bool]

#: Tokens of the deploy locks this process holds right now.
_ACTIVE: set[str] = set()


def judge_stale(
    holder: LockOwner,
    here: Machine,
    my_pid: int,
    active: Collection[str],
    pid_alive: Callable[[int], bool],
) -> bool:
    """True only when ``holder`` provably was a run on this machine that is gone (pure).

    Stale when the holder ran in this very pid namespace of this boot and its process
    has exited (``pid_alive``), or it is this process (``my_pid``) and its run (token
    not in ``active``) has ended without releasing; or when the holder ran on this
    machine (same machine id) before it rebooted (another boot id). Anything else is
    never stale: another machine, container or pid namespace with the same hostname,
    an unknown identity (an old lock file), a lock without token. Only its owner can
    know whether such a run is still going.
    """
    if not holder.token or holder.controlhost != here.hostname:
        return False
    if not holder.boot_id or not here.boot_id:
        return False
    if holder.boot_id != here.boot_id:
        # Another kernel: this machine before a reboot (its runs are all gone), or another
        # machine when the machine ids differ or are unknown.
        return bool(here.machine_id) and holder.machine_id == here.machine_id
    if not holder.pidns or holder.pidns != here.pidns:
        return False  # its pid means nothing in our pid namespace
    if holder.pid <= 0:
        return False
    if holder.pid == my_pid:
        return holder.token not in active
    return not pid_alive(holder.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(holder: LockOwner) -> bool:
    """True when ``holder`` was a run of this machine and pid namespace that is gone.

    See :func:`judge_stale`; this process's identity, pid and active runs are used.
    """
    return judge_stale(holder, this_machine(), os.getpid(), _ACTIVE, _pid_alive)


@dataclass
class HeldLock:
    """A deploy lock this run holds.

    ``state`` holds the values of the facts read right after taking the lock (same round
    trip), in the order given.
    A script that ends with :meth:`release_snippet` and succeeded sets ``released`` so the
    ``finally`` does not spend another round trip on it.
    """

    owner: LockOwner
    path: str
    state: Any = None
    released: bool = False

    def release_snippet(self) -> str:
        """Shell snippet releasing this lock (token-checked)."""
        return release_command(self.path, self.owner)


@contextlib.contextmanager
def deploy_lock(
    ctx: HostContext,
    app: str,
    lock_path: str,
    timeout: float,
    then: Sequence[Fact[object]] = (),
    stale: StaleCheck | None = None,
) -> Iterator[HeldLock]:
    """Hold the deploy lock of ``app`` on ``ctx``'s host for the ``with`` block.

    Waits up to ``timeout`` seconds on the host; then fails naming the holder. The facts in
    ``then`` are read in the same command once the lock is taken (the state may have
    changed while waiting); their values are in ``HeldLock.state``, in order. The lock is
    released in a ``finally``, also when the block raises, unless the block marked it
    released. A lock left by a run that is gone (see :func:`is_stale`, or the ``stale``
    hook) is broken at once, naming its owner, instead of waiting for it.
    """
    owner = new_owner()
    # Known as active before the lock exists on the host: another run in this process
    # that finds it there must not judge it stale while this one is still taking it.
    _ACTIVE.add(owner.token)
    try:
        yield from _hold(ctx, app, lock_path, timeout, then, stale, owner)
    finally:
        _ACTIVE.discard(owner.token)


def _hold(
    ctx: HostContext,
    app: str,
    lock_path: str,
    timeout: float,
    then: Sequence[Fact[object]],
    stale: StaleCheck | None,
    owner: LockOwner,
) -> Iterator[HeldLock]:
    marker = ""
    suffix = ""
    if then:
        script, marker = batch_script(then)
        # Each fact runs in a subshell: its exit status cannot look like a lock failure.
        suffix = f" && {{ {script}\ntrue; }}"
    # One quick try first: a free lock costs one round trip; a held one is judged stale
    # or waited for.
    res = ctx.conn.run(acquire_command(lock_path, owner, 0) + suffix, timeout=60)
    if res.exit_code == HELD_EXIT:
        holder = parse_owner(res.stdout)
        if holder is not None and (is_stale(holder) or (stale is not None and stale(holder))):
            lock = q(lock_path)
            ctx.conn.run(
                f"if grep -qF -- {q(holder.token)} {lock} 2>/dev/null; then rm -f -- {lock}; fi",
                timeout=60,
            )
        res = ctx.conn.run(
            acquire_command(lock_path, owner, timeout) + suffix, timeout=timeout + 60
        )
    if res.exit_code == HELD_EXIT:
        raise TaskFailed(held_message(app, ctx.host, lock_path, res.stdout, timeout))
    if not res.ok:
        raise TaskFailed(
            f"cannot take deploy lock {lock_path}: {(res.stderr or res.stdout).strip()}"
        )
    held = HeldLock(owner, lock_path)
    try:
        if then:
            parts = split_batch(res.stdout, marker, len(then))
            held.state = [f.parse(out, rc) for f, (out, rc) in zip(then, parts, strict=True)]
        yield held
    finally:
        if not held.released:
            with contextlib.suppress(Exception):
                ctx.conn.run(release_command(lock_path, owner), timeout=60)
