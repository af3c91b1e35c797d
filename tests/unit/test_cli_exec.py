"""``cdlib exec``: one command on matching hosts, output per host, recap and exit codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdlib.cli.main import main as cli_main


def _inv(tmp_path: Path) -> str:
    inv = tmp_path / "inv.ini"
    inv.write_text(
        "[web]\n"
        + "".join(f"h{i} ansible_connection=local\n" for i in (1, 2))
        + "[db]\nd1 ansible_connection=local\n"
    )
    return str(inv)


def test_exec_runs_one_shell_line_on_matching_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = cli_main(
        ["exec", "web", "-i", _inv(tmp_path), "--", "echo", "hi", "|", "tee", "-a", str(out)]
    )
    assert code == 0
    assert out.read_text() == "hi\nhi\n"  # two web hosts, the pipe ran on the host side
    text = capsys.readouterr().out
    assert "[h1]" in text and "[h2]" in text and "[d1]" not in text
    assert "    hi" in text


def test_exec_failure_and_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = _inv(tmp_path)
    marker = tmp_path / "m"
    assert cli_main(["exec", "all", "-i", inv, "--", "test", "-e", str(marker)]) == 2
    assert cli_main(["exec", "all", "-i", inv, "--check", "--", "touch", str(marker)]) == 0
    assert not marker.exists()
    assert "skipped" in capsys.readouterr().out
    assert cli_main(["exec", "all", "-i", inv]) == 5


def test_other_commands_read_double_dash_as_the_end_of_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only ``exec`` takes the words after ``--`` for the hosts; ``run`` gets its
    playbook there, and a value after it is never echoed in an error."""
    pb = tmp_path / "-site.py"
    pb.write_text(
        "from cdlib import Play, tasks\nPlay('p', hosts='web').task(tasks.command('true'))\n"
    )
    assert cli_main(["run", "-i", _inv(tmp_path), "--", str(pb)]) == 0
    code = cli_main(["vault", "encrypt-string", "--", "-s3cret-value"])
    assert code != 0 and "s3cret" not in capsys.readouterr().err


def test_run_state_is_set_for_that_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CDLIB_STATE", raising=False)
    pb = tmp_path / "site.py"
    pb.write_text(
        "from cdlib import Play, tasks\nPlay('p', hosts='web').task(tasks.command('true'))\n"
    )
    assert cli_main(["run", str(pb), "-i", _inv(tmp_path), "--state", str(tmp_path / "st")]) == 0
    assert "CDLIB_STATE" not in os.environ
