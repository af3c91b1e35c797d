"""A writer for supervisord's INI files that refuses what the format cannot hold.

Facts about the format (supervisor 4, read with Python's ``configparser``):

* one value per line: a newline (or any control character) ends it, and a line that
  starts with ``[`` opens a new section, so such values cannot be written at all;
* ``;`` or ``#`` after whitespace starts an inline comment, with no escape;
* leading and trailing whitespace of a value is dropped;
* values are ``%``-expanded (``%(here)s``): a literal ``%`` is written ``%%``;
* ``environment`` is ``KEY="value",...`` split by a non-POSIX ``shlex``: quotes have
  no escapes (a value may hold ``"`` inside ``'...'`` or ``'`` inside ``"..."``, not
  both), backslashes are literal, and leading/trailing quote characters are stripped.

Errors name the field, never its value (a value may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

#: Program names: they become ``[program:name]``, a file name and a log file name.
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,199}")
#: Environment variable names as POSIX shells accept them.
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT_RE = re.compile(r"\s[;#]")


class IniValueError(ValueError):
    """A value supervisord's config format cannot hold; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}, which supervisord's config cannot hold")
        self.field = field
        self.problem = problem


def _check_line(field: str, text: str) -> None:
    for ch in text:
        if ch < " " or ch in "\x7f\x85\u2028\u2029":
            what = "a newline" if ch in "\n\r\x85\u2028\u2029" else f"control character {ch!r}"
            raise IniValueError(field, f"holds {what}")
    if _COMMENT_RE.search(text):
        raise IniValueError(field, "holds ';' or '#' after whitespace (a comment)")


def value(field: str, text: str) -> str:
    """``text`` as one INI value: checked, with ``%`` doubled."""
    _check_line(field, text)
    if text != text.strip():
        raise IniValueError(field, "starts or ends with whitespace")
    return text.replace("%", "%%")


def name(field: str, text: str) -> str:
    """A program name, usable in a section header, a file name and a log file name."""
    if not NAME_RE.fullmatch(text):
        raise IniValueError(
            field,
            "must be 1-200 letters, digits or '_.@+-' (not starting with '.', '-', '@' "
            "or '+'), as it names a section and a file",
        )
    return text


def environment(field: str, env: Mapping[str, str]) -> str:
    """``KEY="value",...`` for the ``environment`` option, keys sorted."""
    out = []
    for key in sorted(env):
        if not ENV_KEY_RE.fullmatch(key):
            raise IniValueError(f"{field} key {key!r}", "is not a variable name")
        v = env[key]
        where = f"{field} {key}"
        _check_line(where, v)
        if v[:1] in ("'", '"') or v[-1:] in ("'", '"'):
            raise IniValueError(where, "starts or ends with a quote character")
        if '"' in v and "'" in v:
            raise IniValueError(where, "holds both ' and \"")
        quote = "'" if '"' in v else '"'
        out.append(f"{key}={quote}{v.replace('%', '%%')}{quote}")
    return ",".join(out)


def render(sections: Sequence[tuple[str, Sequence[tuple[str, str]]]], comment: str) -> str:
    """An INI file from already-written values (see :func:`value`), one blank line apart."""
    lines = [f"; {comment}"]
    for i, (header, items) in enumerate(sections):
        if i:
            lines.append("")
        lines.append(f"[{header}]")
        lines += [f"{k}={v}" for k, v in items]
    return "\n".join(lines) + "\n"
