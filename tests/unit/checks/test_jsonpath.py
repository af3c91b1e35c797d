"""The JSON path subset used by HTTP checks."""

from __future__ import annotations

import pytest

from cdlib.checks import jsonpath

DOC = {"a": {"b": [{"c": 1}, {"c": 2}]}, "odd key": "x", "list": [1, 2, 3], "v": "1.2.3"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOC),
        ("$.v", "1.2.3"),
        ("$.a.b[0].c", 1),
        ("$.a.b[-1].c", 2),
        ('$["odd key"]', "x"),
        ("$['odd key']", "x"),
        ("$.list[2]", 3),
    ],
)
def test_resolves(path: str, value: object) -> None:
    assert jsonpath.resolve(DOC, path) == value


@pytest.mark.parametrize(
    ("path", "where"),
    [("$.nope", "$ has no key 'nope'"), ("$.a.b[5]", "$.a.b has no index [5]"), ("$.v.x", "$.v")],
)
def test_missing_paths_say_where_they_stopped(path: str, where: str) -> None:
    with pytest.raises(jsonpath.PathNotFound, match=where.replace("[", r"\[").replace("$", r"\$")):
        jsonpath.resolve(DOC, path)


@pytest.mark.parametrize("path", ["a.b", "$.a..b", "$[*]", "$.a[?(@.c)]", "$.a["])
def test_unsupported_syntax_is_rejected(path: str) -> None:
    with pytest.raises(jsonpath.JsonPathError):
        jsonpath.parse(path)


def test_contains() -> None:
    assert jsonpath.contains("hello", "ell")
    assert jsonpath.contains([1, 2], 2)
    assert jsonpath.contains({"k": 1}, "k")
    assert not jsonpath.contains([1, 2], 3)
    assert not jsonpath.contains(5, 5)
