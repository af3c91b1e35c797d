"""The ``local`` transport: commands run as subprocesses on the control machine."""

from __future__ import annotations

import contextlib
import getpass
import os
import subprocess

from cdlib.connections.base import Become, CommandResult, Connection, UnreachableError


class LocalConnection(Connection):
    """Run commands on this machine with ``sh -c``; no SSH involved."""

    transport = "local"

    def __init__(self, host: str = "localhost", *, become: Become | None = None) -> None:
        super().__init__(host, become=become)

    def login_user(self) -> str:
        """The user cdlib itself runs as."""
        return getpass.getuser()

    def _connect(self) -> None:
        pass

    def _run(
        self, command: str, *, stdin: bytes | None, timeout: float | None, display: str
    ) -> CommandResult:
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", command],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return CommandResult(display, 124, _text(exc.stdout), f"timed out after {timeout}s")
        except OSError as exc:  # /bin/sh missing: this host cannot run anything
            raise UnreachableError(self.host, str(exc)) from exc
        return CommandResult(display, proc.returncode, _text(proc.stdout), _text(proc.stderr))

    def _put(self, data: bytes, remote_path: str) -> None:
        # Created 0600 before any byte is written; whatever was there is replaced, not
        # followed (O_EXCL refuses symlinks too).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(remote_path, flags, 0o600)
        except FileExistsError:
            os.unlink(remote_path)
            fd = os.open(remote_path, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(remote_path)
            raise

    def _get(self, remote_path: str) -> bytes:
        with open(remote_path, "rb") as fh:
            return fh.read()

    def close(self) -> None:
        """Nothing to close for local commands."""


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", "replace")


__all__ = ["LocalConnection"]
