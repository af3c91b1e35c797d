"""Every file the docs name inside the repository exists.

README.md, docs/**/*.md and the example playbooks' docstrings name repository paths
(``playbooks/hello.py``, ``inventories/local.yml``...). A path that is not in the repository
fails here, unless the page declares it as one of *your* files in an example for another
environment, with a comment ``<!-- example files: PATH ... -->`` (the page's text says so too).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOP = "cdlib|docs|playbooks|inventories|scripts|tests|sampleapp|bench"
# A repository path: one of the top-level directories, then a path (not inside a longer word).
PATH = re.compile(rf"(?<![\w./$-])(?:\./)?((?:{TOP})/[\w.@/-]*[\w/])")
EXAMPLES = re.compile(r"<!--\s*example files:(.*?)-->", re.S)


def _sources() -> Iterator[tuple[Path, str]]:
    yield REPO / "README.md", (REPO / "README.md").read_text()
    for p in sorted((REPO / "docs").rglob("*.md")):
        yield p, p.read_text()
    for p in sorted((REPO / "playbooks").glob("*.py")):
        yield p, ast.get_docstring(ast.parse(p.read_text())) or ""


def missing_paths(text: str) -> list[tuple[int, str]]:
    """(line, path) of each repository path ``text`` names that does not exist."""
    allowed = {w for m in EXAMPLES.finditer(text) for w in m.group(1).split()}
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in PATH.finditer(line):
            path = m.group(1).split("::")[0]
            if any(c in path for c in "<>{}*") or "..." in path or path in allowed:
                continue  # a placeholder, or one of the reader's own files
            if not (REPO / path).exists():
                out.append((n, path))
    return out


def test_docs_name_only_files_that_exist() -> None:
    bad = [
        f"{p.relative_to(REPO)}:{n}: {path}"
        for p, text in _sources()
        for n, path in missing_paths(text)
    ]
    assert not bad, "docs name files that are not in the repository:\n" + "\n".join(bad)


def test_the_check_finds_a_missing_file_and_honours_examples() -> None:
    text = "run `cdlib run playbooks/hello.py -i inventories/fleet.yml`\n"
    assert missing_paths(text) == [(1, "inventories/fleet.yml")]
    assert missing_paths("<!-- example files: inventories/fleet.yml -->\n" + text) == []
    assert missing_paths("see tests/unit/test_doc_paths.py::test_x and $HOME/docs/x") == []
