"""A small JSON path subset for checks: ``$.a.b[0].c``, ``$["odd key"]``, ``$.items[-1]``.

Supported: the root ``$``; ``.name`` (letters, digits, ``_`` and ``-``); ``["name"]`` or
``['name']`` for any key; ``[n]`` list index, negative from the end. No wildcards,
filters or slices: a check asserts one value, and a full JSONPath library would be a
dependency for features a smoke test does not need.
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r"""\[(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\]""")

Step = str | int


class JsonPathError(ValueError):
    """A JSON path that is not in the supported subset."""


class PathNotFound(LookupError):
    """The path does not lead to a value in the document."""


def parse(path: str) -> tuple[Step, ...]:
    """The steps of ``path``: ``str`` for object keys, ``int`` for list indexes."""
    if not path.startswith("$"):
        raise JsonPathError(f"JSON path {path!r} must start with '$'")
    steps: list[Step] = []
    pos = 1
    while pos < len(path):
        for rx in (_NAME, _INDEX, _QUOTED):
            m = rx.match(path, pos)
            if m:
                break
        else:
            raise JsonPathError(f"JSON path {path!r}: cannot parse at {path[pos:]!r}")
        if rx is _NAME:
            steps.append(m.group(1))
        elif rx is _INDEX:
            steps.append(int(m.group(1)))
        else:
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            steps.append(re.sub(r"\\(.)", r"\1", raw))
        pos = m.end()
    return tuple(steps)


def resolve(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``; :class:`PathNotFound` says where it stopped."""
    value = document
    walked = "$"
    for step in parse(path):
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                raise PathNotFound(f"{walked} has no index [{step}]")
            value = value[step]
            walked += f"[{step}]"
        else:
            if not isinstance(value, dict) or step not in value:
                raise PathNotFound(f"{walked} has no key {step!r}")
            value = value[step]
            walked += f".{step}"
    return value


def contains(container: Any, item: Any) -> bool:
    """Containment as a check means it: substring, list element or object key."""
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        return item in container
    if isinstance(container, dict):
        return item in container
    return False


__all__ = ["JsonPathError", "PathNotFound", "contains", "parse", "resolve"]
