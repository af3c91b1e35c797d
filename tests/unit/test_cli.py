"""The command line: suggestions for typos, exit codes, extra vars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdlib.cli.main import main
from cdlib.cli.run import parse_extra_vars
from cdlib.engine.errors import CdlibError


def test_typo_in_subcommand_and_option_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rnu", "x.py"])
    assert exc.value.code == 5
    assert "did you mean 'run'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "x.py", "--chekc"])
    assert "--chekc -> --check" in capsys.readouterr().err


def test_extra_vars_forms(tmp_path: Path) -> None:
    f = tmp_path / "v.yml"
    f.write_text("a: 1\nb: [x]\n")
    assert parse_extra_vars(["k=v x=y", '{"n": 2}', f"@{f}"]) == {
        "k": "v",
        "x": "y",
        "n": 2,
        "a": 1,
        "b": ["x"],
    }
    with pytest.raises(CdlibError, match="key=value"):
        parse_extra_vars(["novalue"])


def test_run_local_playbook_json_and_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "p = Play('p')\n"
        f"p.task(tasks.file('{target}', content='{{{{ greeting }}}}'))\n"
    )
    assert main(["run", str(pb), "-e", "greeting=hi", "--format", "json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in lines] == ["play_start", "task_result", "recap"]
    assert lines[1]["status"] == "changed" and target.read_text() == "hi"
    # no -e: undefined variable, exit 4, nothing written
    target.unlink()
    assert main(["run", str(pb)]) == 4
    err = capsys.readouterr().err
    assert "'greeting'" in err and "pb.py:3" in err and "host localhost" in err
    assert not target.exists()
    assert main(["run", str(tmp_path / "missing.py")]) == 4
