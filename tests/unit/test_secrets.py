"""Redaction of secrets, including rotated values in diffs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdlib.cli.main import main
from cdlib.engine.errors import PlaybookError, PlaybookErrors
from cdlib.engine.results import TaskResult
from cdlib.engine.secrets import MASK, Redactor, Secret
from cdlib.engine.task import Status
from cdlib.tasks.files import mask_like


def test_secret_hides_itself() -> None:
    s = Secret("pa55")
    assert str(s) == MASK and "pa55" not in repr(s) and s.reveal() == "pa55"
    assert f"{s}" == MASK


def test_redactor_masks_nested_and_longest_first() -> None:
    r = Redactor()
    r.collect({"a": [Secret("abc"), {"b": Secret("abcdef")}], "c": "plain"})
    assert r("x abcdef y abc") == f"x {MASK} y {MASK}"
    assert r.deep({"k": ["abc"], "n": 1}) == {"k": [MASK], "n": 1}


def test_mask_like_hides_a_previous_secret_value() -> None:
    r = Redactor(["new-secret"])
    new = [r("password = new-secret\n"), "port = 1\n"]
    old = ["password = old-secret\n", "port = 2\n"]
    masked = mask_like(old, new, r)
    assert masked[0] == f"password = {MASK}(previous)\n"
    assert masked[1] == "port = 2\n"


_TOKEN = "tok-4f9a1c77e2"


def _secret_playbook(tmp_path: Path, path: str) -> Path:
    pb = tmp_path / "pb.py"
    pb.write_text(
        "import os\n"
        "from cdlib import Play, Secret, tasks\n"
        "p = Play('p', vars={'token': Secret(os.environ['CDLIB_TEST_TOKEN'])})\n"
        f"p.task(tasks.file({path!r}, content='x'))\n"
    )
    return pb


def test_secret_in_templated_label_is_masked_on_console_and_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDLIB_TEST_TOKEN", _TOKEN)
    pb = _secret_playbook(tmp_path, f"{tmp_path}/{{{{ token }}}}.conf")
    assert main(["run", str(pb)]) == 0
    out = capsys.readouterr().out
    assert _TOKEN not in out
    assert f"file {tmp_path}/{MASK}.conf" in out  # the label, masked
    assert main(["run", str(pb), "--format", "json"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    result = next(e for e in events if e["event"] == "task_result")
    assert result["task"] == f"file {tmp_path}/{MASK}.conf"
    assert _TOKEN not in json.dumps(events)
    assert (tmp_path / f"{_TOKEN}.conf").exists()  # the host still got the real value


def test_secret_in_bad_input_error_is_masked_in_error_line_and_json_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDLIB_TEST_TOKEN", _TOKEN)
    pb = _secret_playbook(tmp_path, "relative/{{ token }}")  # not absolute: bad input
    assert main(["run", str(pb)]) == 4
    err = capsys.readouterr().err
    assert "ERROR:" in err and f"relative/{MASK}" in err and _TOKEN not in err
    assert main(["run", str(pb), "--format", "json"]) == 4
    cap = capsys.readouterr()
    event = json.loads(cap.out.splitlines()[-1])
    assert event["event"] == "error" and f"relative/{MASK}" in event["errors"][0]
    assert _TOKEN not in cap.out + cap.err


def test_redactor_scrubs_every_text_of_a_result_and_its_exception() -> None:
    r = Redactor(["s3"])
    cause = ValueError("cause s3")
    exc = PlaybookErrors([PlaybookError("bad s3", task="t s3", host="h")])
    exc.__cause__ = cause
    res = TaskResult(
        play="p s3", host="h", task="t s3", status=Status.FAILED, msg="m s3",
        diff="d s3", changes=["c s3"], origin="o s3", exception=exc,
    )  # fmt: skip
    r.result(res)
    assert "s3" not in repr(res) + str(exc) + str(exc.errors[0]) + str(cause)
    assert exc.errors[0].task == f"t {MASK}"


_PEM_BODY = ["MIIEowIBAAKCAQEAx3q9Yk2c", "Lm0pQ8rT5uVw1zA4bC7dE9fG", "hJ2kL6nO3pR8sT0uV"]


def test_each_line_of_a_multi_line_secret_is_masked_in_a_file_diff(tmp_path: Path) -> None:
    import cdlib
    from cdlib import Play, tasks

    key = (
        "-----BEGIN RSA PRIVATE KEY-----\n"
        + "\n".join(_PEM_BODY)
        + "\n-----END RSA PRIVATE KEY-----\n"
    )
    play = Play("p", vars={"key": Secret(key)})
    play.task(tasks.file(str(tmp_path / "key.pem"), content="{{ key }}", mode="0600"))
    res = cdlib.run(play, diff=True)
    assert res.ok
    assert (tmp_path / "key.pem").read_text() == key  # the host gets the real key
    diff = "".join(r.diff or "" for r in res.results)
    assert diff, "the file task showed no diff"
    for line in _PEM_BODY:
        assert line not in diff
    assert MASK in diff
    # Short lines of a secret are not masked everywhere on their own.
    r = Redactor()
    r.collect(Secret("ab\nlonger-line-here\n"))
    assert r("ab longer-line-here") == f"ab {MASK}"
