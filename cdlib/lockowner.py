"""Who holds a lock, and one rule for when its holder is provably gone.

Both locks of cdlib use it: the release lock on the control machine
(:mod:`cdlib.release.lock`) and the deploy lock on each host
(:mod:`cdlib.install.lock`). An owner names the user, the control machine's
hostname, the pid, when it took the lock, a token unique to the run (the release id,
or a random one), and what tells the control machine apart from another with the same
hostname (:class:`Machine`). A lock is *stale* only when its owner provably ran on this
machine, in this pid namespace, and is gone (:func:`judge_stale`); a lock file from an
older cdlib, without that identity, is never stale.
"""

from __future__ import annotations

import calendar
import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: Tokens of the locks (release and deploy) this process holds right now.
_ACTIVE: set[str] = set()


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


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: user, control host, pid, since (epoch seconds), token, identity.

    ``token`` is unique to the holding run: the release id for the release lock, a
    random token for a deploy lock; a lock is released only by the run with its token.
    """

    user: str
    host: str
    pid: int
    since: float
    token: str = ""
    boot_id: str = ""
    machine_id: str = ""
    pidns: str = ""

    def describe(self) -> str:
        """``alice@ci-3 pid 4242 since 2026-11-27T21:00:00Z``."""
        return f"{self.user}@{self.host} pid {self.pid} since {self.since_text()}"

    def since_text(self) -> str:
        """When the lock was taken, ISO 8601 UTC (``unknown`` when not known)."""
        if self.since <= 0:
            return "unknown"
        return time.strftime(_TIME_FORMAT, time.gmtime(self.since))

    def to_json(self) -> str:
        """One-line JSON as stored in a lock file.

        The names of older cdlib versions are written too (``machine`` and
        ``controlhost``, ``release_id`` and ``token``), so they can read it.
        """
        return json.dumps(
            {
                "user": self.user,
                "machine": self.host,
                "controlhost": self.host,
                "pid": self.pid,
                "since": self.since,
                "release_id": self.token,
                "token": self.token,
                "boot_id": self.boot_id,
                "machine_id": self.machine_id,
                "pidns": self.pidns,
            },
            sort_keys=True,
        )

    def is_stale(self) -> bool:
        """True when this owner was a run of this machine and pid namespace that is gone.

        See :func:`judge_stale`; this process's identity, pid and held locks are used.
        """
        return judge_stale(self, this_machine(), os.getpid(), _ACTIVE, _pid_alive)


def _text(d: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = d.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"field {name!r} has a bad value {value!r}")
            return value
    raise ValueError(f"field {names[0]!r} is missing")


def _since(value: Any) -> float:
    """Epoch seconds from a number (release lock) or ISO text (older deploy locks)."""
    if isinstance(value, bool):
        raise ValueError(f"field 'since' has a bad value {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(calendar.timegm(time.strptime(value, _TIME_FORMAT)))
        except ValueError:
            return 0.0  # unknown: shown as such
    raise ValueError(f"field 'since' has a bad value {value!r}")


def owner_from_dict(d: Any) -> LockOwner:
    """An owner from a lock file's parsed JSON, of this or an older cdlib version.

    Raises :class:`ValueError` naming what is wrong: not an object, a field missing or of
    the wrong type. Identity fields absent (an older version) are unknown.
    """
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, found {type(d).__name__}")
    user = _text(d, "user")
    host = _text(d, "controlhost", "machine")
    if "pid" not in d:
        raise ValueError("field 'pid' is missing")
    pid = d["pid"]
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise ValueError(f"field 'pid' has a bad value {pid!r}")
    if "since" not in d:
        raise ValueError("field 'since' is missing")
    since = _since(d["since"])
    token = _text(d, "token", "release_id")
    ident = {k: d.get(k) or "" for k in ("boot_id", "machine_id", "pidns")}
    for k, v in ident.items():
        if not isinstance(v, str):
            raise ValueError(f"field {k!r} has a bad value {v!r}")
    return LockOwner(user, host, pid, since, token, **ident)


def new_owner(token: str) -> LockOwner:
    """An owner record for this process, now, with ``token``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    here = this_machine()
    return LockOwner(
        user=user,
        host=here.hostname,
        pid=os.getpid(),
        since=time.time(),
        token=token,
        boot_id=here.boot_id,
        machine_id=here.machine_id,
        pidns=here.pidns,
    )


def mark_active(token: str) -> None:
    """Note that this process holds (or is taking) the lock with ``token``."""
    _ACTIVE.add(token)


def mark_inactive(token: str) -> None:
    """Note that this process no longer holds the lock with ``token``."""
    _ACTIVE.discard(token)


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
    an unknown identity (an old lock file), a lock without token, a pid that names no
    single process. Only its owner can know whether such a run is still going.
    """
    if not holder.token or holder.host != here.hostname:
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
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
