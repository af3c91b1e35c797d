"""One error root: every user-facing error is a CdlibError with an exit code."""

from __future__ import annotations

import argparse

import pytest

from cdlib.checks.suite import SuiteError
from cdlib.cli import main as cli_main
from cdlib.connections.base import TransportError, UnreachableError
from cdlib.engine.errors import PlaybookError, PlaybookErrors, TaskFailed
from cdlib.engine.templating import TemplateError
from cdlib.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    CdlibError,
)
from cdlib.flags.errors import FlagsError, UnknownFlagError
from cdlib.inventory.model import InventoryError, PatternError
from cdlib.release.gates import Aborted
from cdlib.release.lock import LockHeld
from cdlib.release.strategy import ReleaseFailed
from cdlib.traffic.base import RouterInputError, TrafficError


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (PlaybookError, EXIT_BAD_INPUT),
        (PlaybookErrors, EXIT_BAD_INPUT),
        (TemplateError, EXIT_BAD_INPUT),
        (InventoryError, EXIT_BAD_INPUT),
        (PatternError, EXIT_BAD_INPUT),
        (FlagsError, EXIT_BAD_INPUT),
        (UnknownFlagError, EXIT_BAD_INPUT),
        (SuiteError, EXIT_BAD_INPUT),
        (RouterInputError, EXIT_BAD_INPUT),
        (TaskFailed, EXIT_FAILED),
        (TransportError, EXIT_FAILED),
        (UnreachableError, EXIT_UNREACHABLE),
        (TrafficError, EXIT_FAILED),
        (ReleaseFailed, EXIT_FAILED),
        (Aborted, EXIT_FAILED),
        (LockHeld, EXIT_FAILED),
    ],
)
def test_every_error_base_derives_from_the_root_with_an_exit_code(
    cls: type[CdlibError], code: int
) -> None:
    assert issubclass(cls, CdlibError)
    assert cls.exit_code == code


def _command_raising(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise exc

    real = cli_main.build_parser

    def parser(only: str | None = None) -> argparse.ArgumentParser:
        p = real(only)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                action.choices["unlock"].set_defaults(func=fail)
        return p

    monkeypatch.setattr(cli_main, "build_parser", parser)


def test_cli_maps_an_escaping_cdlib_error_to_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _command_raising(InventoryError("hosts.ini:3: bad line"), monkeypatch)
    assert cli_main.main(["unlock", "app"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "hosts.ini:3: bad line" in err
    assert "internal error" not in err


def test_cli_interrupt_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    _command_raising(KeyboardInterrupt(), monkeypatch)
    assert cli_main.main(["unlock", "app"]) == EXIT_INTERRUPTED
