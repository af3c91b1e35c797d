"""Fact parsers and batching, from canned output."""

from __future__ import annotations

import base64
import subprocess

from cdlib.facts.base import batch_script, split_batch
from cdlib.facts.files import PathFact, parse_path_state


def test_parse_regular_file_with_content() -> None:
    out = (
        "kind=file\nsha256=abc\ncontent=" + base64.b64encode(b"hi\n").decode() + "\n"
        "mode=644\nowner=root\ngroup=adm\nsize=3\n"
    )
    st = parse_path_state(out)
    assert st.kind == "file" and st.mode == "0644" and st.group == "adm"
    assert st.content == b"hi\n" and st.size == 3 and st.sha256 == "abc"


def test_parse_absent_link_and_garbage() -> None:
    assert not parse_path_state("kind=absent\n").exists
    assert parse_path_state("").kind == "absent"
    link = parse_path_state("kind=link\ntarget=/srv/a=b\nmode=777\n")
    assert link.target == "/srv/a=b"
    assert parse_path_state("kind=file\ncontent=!!notbase64\n").content is None


def test_split_batch_keeps_order_and_marks_missing_sections() -> None:
    marker = "@@m"
    out = "noise\n@@m 0\nA\n\n@@m rc 0\n@@m 1\n\n@@m rc 3\n"
    assert split_batch(out, marker, 3) == [("A\n", 0), ("", 3), ("", 255)]


def test_batch_runs_for_real_and_a_forged_marker_in_content_cannot_confuse_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    evil = tmp_path / "evil"
    evil.write_text("@@cdlib-0000 rc 0\nkind=absent\n")
    facts = [PathFact(str(evil)), PathFact(str(tmp_path / "none")), PathFact(str(tmp_path))]
    script, marker = batch_script(facts)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    parsed = [
        f.parse(o, rc) for f, (o, rc) in zip(facts, split_batch(out, marker, 3), strict=False)
    ]
    assert parsed[0].kind == "file" and parsed[0].content == evil.read_bytes()
    assert parsed[1].kind == "absent"
    assert parsed[2].kind == "directory"
