"""The per-app deploy lock: a lock file on the host holding its owner as JSON.

Taking it is an ``O_EXCL`` create (``set -C`` / noclobber), so of two runs exactly one wins.
The file holds its :class:`~cdlib.lockowner.LockOwner` (user, control host, pid, since,
token, and what tells the control machine apart from another with the same hostname); the
release lock on the control machine uses the same owner and staleness rule. Releasing
removes it only when it still holds our token, so a run never frees a lock it does not own.
Waiting happens on the host in a bounded loop, so it costs one round trip.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cdlib.connections.shell import q
from cdlib.engine.errors import TaskFailed
from cdlib.engine.task import HostContext
from cdlib.facts.base import Fact, batch_script, split_batch
from cdlib.lockowner import (
    LockOwner,
    Machine,
    judge_stale,
    mark_active,
    mark_inactive,
    owner_from_dict,
    this_machine,
)
from cdlib.lockowner import new_owner as _new_owner

#: Exit code of the acquire snippet when the lock stayed taken for the whole timeout.
HELD_EXIT = 75
#: Seconds between two tries on the host.
POLL = 0.2


def parse_owner(text: str) -> LockOwner | None:
    """Parse a lock file's content; ``None`` for an empty file (being written right now).

    Unreadable content gives an owner ``unknown``, which is never judged stale.
    """
    text = text.strip()
    if not text:
        return None
    try:
        return owner_from_dict(json.loads(text))
    except ValueError:
        return LockOwner("unknown", "unknown", 0, 0.0, "")


def new_owner() -> LockOwner:
    """An owner record for this process, with a fresh token."""
    return _new_owner(secrets.token_hex(8))


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


def is_stale(holder: LockOwner) -> bool:
    """True when ``holder`` was a run of this machine and pid namespace that is gone.

    The one rule of both locks: :func:`cdlib.lockowner.judge_stale`.
    """
    return holder.is_stale()


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
    mark_active(owner.token)
    try:
        yield from _hold(ctx, app, lock_path, timeout, then, stale, owner)
    finally:
        mark_inactive(owner.token)


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


__all__ = [
    "HELD_EXIT",
    "POLL",
    "HeldLock",
    "LockOwner",
    "Machine",
    "StaleCheck",
    "acquire_command",
    "deploy_lock",
    "held_message",
    "is_stale",
    "judge_stale",
    "new_owner",
    "parse_owner",
    "release_command",
    "this_machine",
]
