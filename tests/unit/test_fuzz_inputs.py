"""Property tests: bad playbook options and flag files never crash with a traceback.

Either the input is accepted, or a cdlib error names what is wrong; never another
exception type.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cdlib import tasks
from cdlib.engine.errors import PlaybookError
from cdlib.flags.document import parse_document
from cdlib.flags.errors import FlagsError
from cdlib.flags.validate import check_document

_TASKS = [tasks.command, tasks.directory, tasks.file, tasks.template, tasks.symlink]
_NAMES = [
    "path",
    "content",
    "mode",
    "owner",
    "group",
    "state",
    "src",
    "dest",
    "cmd",
    "creates",
    "removes",
    "target",
    "force",
    "notify",
    "when",
    "run_once",
    "name",
    "contnet",
    "modee",
    "timeout",
    "env",
    "chdir",
    "vars",
    "ignore_errors",
]
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["/srv/x", "0644", "present", "absent", "{{ x }}"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    task=st.sampled_from(_TASKS),
    positional=st.lists(_values, max_size=2),
    options=st.dictionaries(st.sampled_from(_NAMES), _values, max_size=5),
)
def test_task_options_fail_cleanly(
    task: Any, positional: list[Any], options: dict[str, Any]
) -> None:
    try:
        task(*positional, **options)
    except PlaybookError as exc:
        assert str(exc)  # a located, readable message
        assert exc.origin is not None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "flags",
                    "state",
                    "variants",
                    "defaultVariant",
                    "targeting",
                    "metadata",
                    "$evaluators",
                    "on",
                    "off",
                    "x",
                    "fractional",
                    "$ref",
                    "if",
                    "var",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(doc=_json)
def test_flag_documents_never_crash(doc: Any) -> None:
    text = json.dumps(doc)
    try:
        for problem in check_document(parse_document(text, "fuzz.json")):
            assert str(problem)
    except FlagsError as exc:
        assert "fuzz.json" in str(exc)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_flag_text_never_crashes(text: str) -> None:
    for fmt in ("json", "yaml"):
        try:
            check_document(parse_document(text, f"fuzz.{fmt}", fmt))  # type: ignore[arg-type]
        except FlagsError as exc:
            assert f"fuzz.{fmt}" in str(exc)
