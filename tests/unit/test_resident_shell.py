"""Reading the resident shell's framed output (cdlib.connections.resident), from canned bytes."""

from __future__ import annotations

import pytest

from cdlib.connections.resident import ResidentShell, ShellGone


class FakeChannel:
    """Just enough of a paramiko Channel: canned stdout/stderr, sent bytes recorded."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.sent = bytearray()
        self.command = ""
        self.eof_received = False
        self.closed = False

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def recv_ready(self) -> bool:
        return bool(self.out)

    def recv_stderr_ready(self) -> bool:
        return bool(self.err)

    def recv(self, n: int) -> bytes:
        chunk = bytes(self.out[:n])
        del self.out[:n]
        return chunk

    def recv_stderr(self, n: int) -> bytes:
        chunk = bytes(self.err[:n])
        del self.err[:n]
        return chunk

    def exit_status_ready(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class FakeTransport:
    def __init__(self) -> None:
        self.chan = FakeChannel()

    def open_session(self, timeout: float) -> FakeChannel:
        return self.chan


def _shell() -> tuple[ResidentShell, FakeChannel]:
    t = FakeTransport()
    return ResidentShell(t, 5.0), t.chan  # type: ignore[arg-type]


def test_frames_are_length_prefixed_and_the_first_markers_are_skipped() -> None:
    sh, ch = _shell()
    m = sh.marker
    assert m.decode() in ch.command
    ch.out += b"\n" + m + b" 0\nhi\n" + m + b" 0\n"
    ch.err += b"\n" + m + b"\n\n" + m + b"\n"
    res = sh.run("echo hi", b"\x00x", None)
    assert ch.sent == b"7 2\necho hi\x00x"
    assert (res.code, res.stdout, res.stderr) == (0, b"hi", b"")


def test_sync_and_command_output_arriving_together_are_split_right() -> None:
    sh, ch = _shell()
    m = sh.marker
    # A chatty login shell, the sync's markers and the command's, all in one read.
    ch.out += b"Welcome!\n\n" + m + b" 0\npartial line\n" + m + b" 3\n"
    ch.err += b"rc noise\n" + m + b"\nwarn\n\n" + m + b"\n"
    res = sh.run("x", None, None)
    assert (res.code, res.stdout, res.stderr) == (3, b"partial line", b"warn\n")


def test_bytes_of_a_later_command_stay_for_the_next_read() -> None:
    sh, ch = _shell()
    m = sh.marker
    ch.out += b"\n" + m + b" 0\n"
    ch.err += b"\n" + m + b"\n"
    ch.out += b"a\n" + m + b" 0\nb\n" + m + b" 1\n"
    ch.err += b"\n" + m + b"\ne\n" + m + b"\n"
    first = sh.run("a", None, None)
    second = sh.run("b", None, None)
    assert (first.code, first.stdout, first.stderr) == (0, b"a", b"")
    assert (second.code, second.stdout, second.stderr) == (1, b"b", b"e")


def test_end_of_channel_before_the_marker_is_shell_gone() -> None:
    sh, ch = _shell()
    ch.out += b"half"
    ch.eof_received = True
    with pytest.raises(ShellGone) as info:
        sh.run("x", None, None)
    assert info.value.args[0] == b"half"
