"""A resident shell on an SSH host: many commands over one session channel.

Every ``exec`` request makes sshd fork a session and start the user's login shell, and
on Debian a non-interactive bash started by sshd reads ``~/.bashrc``: a ``pyenv init``
or ``nvm`` there costs 100 ms or more *per command*. The resident shell pays that once
per host. One channel runs a small ``/bin/sh`` loop; each command is framed on its
stdin as a header line ``<command bytes> <stdin bytes>`` followed by the raw bytes, read
back with ``head -c`` (which reads exactly that many bytes from a pipe). The command
runs in its own ``/bin/sh -c`` (as on every transport) with its stdin from that frame
(or ``/dev/null``); the loop then prints a marker carrying the exit status
on stdout and a marker on stderr.

The protocol never lets a command read the channel itself, and a command that leaves
its stdin unread has the rest drained, so framing cannot slip.
"""

from __future__ import annotations

import secrets
import select
import time
from dataclasses import dataclass

import paramiko

from cdlib.connections.shell import q

# The loop reads the header with the ``read`` builtin (byte by byte, as POSIX requires
# for a pipe) and the payloads with ``head -c`` (exact reads), never with the shell's
# own buffered input. ``$M`` is the per-session marker.
_LOOP = (
    # bash reads ~/.bashrc when sshd's variables are set and SHLVL < 2; the login
    # shell's `exec` took SHLVL back to 0, so say where a command really sits (or a
    # `bash -c` inside one would read ~/.bashrc again).
    "SHLVL=1; export SHLVL; "
    # A first pair of markers: what the login shell printed before them is dropped.
    "printf '\\n%s 0\\n' \"$M\"; printf '\\n%s\\n' \"$M\" >&2; "
    "while IFS=' ' read -r n i; do "
    'c=$(head -c "$n"); '
    'if [ "$i" -gt 0 ]; then '
    'head -c "$i" | { /bin/sh -c "$c"; r=$?; cat >/dev/null; exit $r; }; '
    'else /bin/sh -c "$c" </dev/null; fi; '
    'printf \'\\n%s %d\\n\' "$M" "$?"; printf \'\\n%s\\n\' "$M" >&2; '
    "done"
)


class ShellGone(Exception):
    """The resident shell ended (or the connection did) before a command finished."""


@dataclass
class Output:
    """What one command produced."""

    code: int
    stdout: bytes
    stderr: bytes


class ResidentShell:
    """One ``/bin/sh`` loop on a session channel of ``transport``.

    Not thread-safe: the caller serialises commands (and uses a fresh exec channel for
    a command that arrives while this one is busy).
    """

    def __init__(self, transport: paramiko.Transport, open_timeout: float) -> None:
        self.marker = f"@@cdlib-rs-{secrets.token_hex(8)}".encode()
        self._chan = transport.open_session(timeout=open_timeout)
        self._chan.exec_command(f"M={self.marker.decode()} exec /bin/sh -c {q(_LOOP)}")
        # Whatever the login shell prints before the loop starts (a chatty ~/.bashrc)
        # ends up before the loop's first markers, read and dropped with them before
        # the first command's output (no round trip of its own).
        self._out = bytearray()
        self._err = bytearray()
        self._unread_sync = True

    def run(self, command: str, stdin: bytes | None, timeout: float | None) -> Output:
        """Run ``command``; raises :class:`ShellGone` or :class:`TimeoutError`."""
        self._send(command, stdin or b"")
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._unread_sync:
            self._read(deadline)
            self._unread_sync = False
        return self._read(deadline)

    def _send(self, command: str, data: bytes) -> None:
        body = command.encode()
        self._chan.sendall(b"%d %d\n" % (len(body), len(data)) + body + data)

    def close(self) -> None:
        """Close the channel; the loop ends on end of input."""
        self._chan.close()

    @property
    def alive(self) -> bool:
        """Whether the channel is still open."""
        return not (self._chan.closed or self._chan.exit_status_ready())

    def _read(self, deadline: float | None) -> Output:
        """The next command's output. Bytes after its markers (the next command's, when
        two frames were sent back to back) stay buffered for the next call."""
        chan = self._chan
        end_out = b"\n" + self.marker + b" "
        end_err = b"\n" + self.marker + b"\n"
        out: bytes | None = None
        err: bytes | None = None
        code = 0
        while True:
            if out is None:
                at = self._out.find(end_out)
                nl = self._out.find(b"\n", at + len(end_out)) if at >= 0 else -1
                if nl >= 0:
                    code = int(self._out[at + len(end_out) : nl])
                    out = bytes(self._out[:at])
                    del self._out[: nl + 1]
            if err is None:
                at = self._err.find(end_err)
                if at >= 0:
                    err = bytes(self._err[:at])
                    del self._err[: at + len(end_err)]
            if out is not None and err is not None:
                return Output(code, out, err)
            got = False
            while chan.recv_ready():
                self._out += chan.recv(65536)
                got = True
            while chan.recv_stderr_ready():
                self._err += chan.recv_stderr(65536)
                got = True
            if got:
                continue
            if chan.eof_received or chan.closed:
                if chan.recv_ready() or chan.recv_stderr_ready():
                    continue
                raise ShellGone(bytes(self._out), bytes(self._err))
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError
            select.select([chan], [], [], min(wait, 1.0))
