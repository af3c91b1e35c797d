"""Template errors name the template, the line and the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdlib.engine.secrets import Secret
from cdlib.engine.templating import Templar, TemplateError


def test_undefined_variable_line(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("one\n{% if x %}\n{{ missing_var }}\n{% endif %}\n")
    with pytest.raises(TemplateError) as err:
        Templar([tmp_path]).render_file("t.j2", {"x": True})
    assert err.value.line == 3
    assert "'missing_var'" in str(err.value) and "t.j2:3" in str(err.value)


def test_syntax_error_line(tmp_path: Path) -> None:
    (tmp_path / "s.j2").write_text("a\n{{ oops \n")
    with pytest.raises(TemplateError) as err:
        Templar([tmp_path]).render_file("s.j2", {})
    assert err.value.line == 2


def test_secret_renders_real_value_and_string_option_errors() -> None:
    t = Templar()
    assert t.render_string("pw={{ p }}", {"p": Secret("x1")}, what="x") == "pw=x1"
    with pytest.raises(TemplateError, match=r"option 'dest'.*'nope'"):
        t.render_string("{{ nope }}", {}, what="option 'dest'")
    assert t.render_string("no template", {}, what="x") == "no template"
