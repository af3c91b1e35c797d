"""Every ``cdlib ...`` command that a message in cdlib/ suggests exists and parses.

The messages are collected from the source (every string literal that is not a docstring,
f-strings included), so a new suggestion is checked the day it is written.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cdlib.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2] / "cdlib"
#: A command to type, as messages write one: ``'cdlib WORD ...'`` in quotes or backticks
#: (an unquoted "cdlib run: ..." is the prefix of an error, "cdlib supports" prose).
SUGGESTION = re.compile(r"""(['`])cdlib ([a-z][^'`\n]*)\1""")
#: A placeholder in a suggestion (``{app}`` in an f-string, ``APP`` or ``GROUP`` as a
#: metavar) stands for one word the user types.
PLACEHOLDER = re.compile(r"^(\{\}|[A-Z][A-Z_]*)$")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every non-docstring string literal; f-string holes become ``{}``."""
    skip = _docstrings(tree)
    inner: set[int] = set()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for part in node.values:
                inner.add(id(part))
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    text += part.value
                else:
                    text += "{}"
            out.append((node.lineno, text))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and id(node) not in inner
        ):
            out.append((node.lineno, node.value))
    return out


def _suggestions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for line, text in _literals(tree):
            for m in SUGGESTION.finditer(text):
                where = f"{path.relative_to(ROOT.parent)}:{line}"
                found.append((where, m.group(2).strip()))
    return found


SUGGESTIONS = _suggestions()


def test_the_collector_finds_the_known_suggestions() -> None:
    # Guards the collector itself: these suggestions are in cdlib's messages today.
    words = {s for _, s in SUGGESTIONS}
    assert "unlock {}" in words and "rollback {} --to GROUP" in words
    assert any(s.startswith(("abort", "promote")) for s in words)


def _problem(suggestion: str) -> str | None:
    """Why ``cdlib SUGGESTION`` would not run as written, or ``None`` when it parses."""
    argv = ["demo" if PLACEHOLDER.match(w) else w for w in suggestion.split()]
    parser = build_parser(argv[0])
    if len(argv) == 1:
        # A bare name ("aborted by 'cdlib abort'") names a command: it must exist.
        argv.append("--help")
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exc:
        return None if argv[-1] == "--help" and exc.code == 0 else f"usage error {exc.code}"
    if extras:
        return f"unknown arguments {extras}"
    return None if args.command == argv[0] else f"parsed as {args.command!r}"


@pytest.mark.parametrize("where,suggestion", SUGGESTIONS, ids=[f"{w} {s}" for w, s in SUGGESTIONS])
def test_suggested_command_parses(where: str, suggestion: str) -> None:
    problem = _problem(suggestion)
    assert problem is None, f"{where}: suggests 'cdlib {suggestion}': {problem}"


def test_a_suggestion_that_does_not_exist_fails(capsys: pytest.CaptureFixture[str]) -> None:
    # The check must catch what the issue found: an option and a command never there.
    assert _problem("unlock {} --stale") is not None
    assert _problem("resume {}") is not None
    assert _problem("rollback --to GROUP") is not None  # APP missing
