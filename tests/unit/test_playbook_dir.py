"""``playbook_dir`` is absolute, whatever the current directory (as in Ansible)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cdlib
from cdlib import Host, Inventory
from cdlib.inventory.model import Group

BOOK = """\
from cdlib import Play, tasks

play = Play("p", hosts="all")
play.task(tasks.file("{{ out }}/dir", content="{{ playbook_dir }}"))
play.task(tasks.copy("{{ playbook_dir }}/../data.txt", "{{ out }}/data"))
"""


def test_playbook_dir_is_absolute_for_a_relative_playbook_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "book.py").write_text(BOOK)
    (tmp_path / "data.txt").write_text("beside the playbooks\n")
    out = tmp_path / "out"
    out.mkdir()
    host = Host("h1", {"ansible_connection": "local", "out": str(out)}, [])
    inv = Inventory([host], {"all": Group("all", hosts=["h1"])})
    monkeypatch.chdir(tmp_path)
    res = cdlib.run("playbooks/book.py", inv)
    assert res.ok, [r.msg for r in res.results]
    assert (out / "dir").read_text() == str(tmp_path / "playbooks")
    assert (out / "data").read_text().strip() == "beside the playbooks"
