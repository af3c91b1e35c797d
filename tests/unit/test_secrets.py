"""Redaction of secrets, including rotated values in diffs."""

from __future__ import annotations

from cdlib.engine.secrets import MASK, Redactor, Secret
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
