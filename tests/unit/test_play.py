"""Play construction, serial batches and option validation."""

from __future__ import annotations

import pytest

from cdlib import Play, PlaybookError, tasks
from cdlib.engine.play import batches


def test_batches_follow_ansible_rules() -> None:
    hosts = [f"h{i}" for i in range(10)]
    assert batches(hosts, None) == [hosts]
    assert [len(b) for b in batches(hosts, 3)] == [3, 3, 3, 1]
    assert [len(b) for b in batches(hosts, "25%")] == [2, 2, 2, 2, 2]
    assert [len(b) for b in batches(hosts, [1, "50%", "100%"])] == [1, 5, 4]
    assert batches([], 2) == []


def test_bad_serial_and_wrong_option_types_name_the_line() -> None:
    with pytest.raises(PlaybookError, match="serial"):
        Play("p", serial="ten")
    with pytest.raises(PlaybookError) as err:
        tasks.directory("/srv/x", mode=True)  # type: ignore[arg-type]
    assert "test_play.py:" in str(err.value) and "option 'mode'" in str(err.value)
    with pytest.raises(PlaybookError, match="absolute path"):
        tasks.file("relative/path", content="x")
    with pytest.raises(PlaybookError, match=r"did you mean 'creates'"):
        tasks.command("true", craetes="/x")  # type: ignore[call-arg]
    with pytest.raises(PlaybookError, match="octal mode"):
        tasks.file("/x", mode="rw-r--r--")


def test_notify_of_unknown_handler_is_reported() -> None:
    p = Play("p")
    p.task(tasks.command("true", notify="restrat app"))
    p.handler("restart app", tasks.command("true"))
    errors = p.validate()
    assert len(errors) == 1 and "did you mean 'restart app'" in str(errors[0])
