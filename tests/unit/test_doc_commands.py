"""Every ``cdlib ...`` command the docs show parses with cdlib's real argument parser.

The commands are the lines of the fenced code blocks (```` ```sh ````, ```` ```console ````,
```` ```bash ````, ```` ```shell ```` or plain ```` ``` ````) of README.md and docs/**/*.md,
and the indented or labelled lines of the example playbooks' docstrings. A line is a command
when, after a ``$`` prompt, ``VAR=value`` assignments and a path such as ``.venv/bin/``, its
first word is ``cdlib``; in a block with ``$`` prompts only the prompted lines are commands
(the others are output). A trailing ``\\`` joins the next line; ``# comments`` and anything
after ``>`` or ``|`` (a redirection, a pipe) are dropped.

A usage synopsis (``cdlib run PLAYBOOK [-i SRC ...] [--check]``) is checked with every
optional part present, the first of ``A | B`` alternatives and ``...`` dropped. A placeholder
word in capitals (``APP``, ``FILE``, ``LABEL@SOURCE``) stands for one word the user types:
``N`` and ``S`` (a count, seconds) become ``1``, any other ``demo`` (with ``@`` kept).

A block that shows commands for an environment this repository cannot reproduce (a cdlib of
another version, a tool wrapping cdlib) may be preceded by ``<!-- example commands: WHY -->``;
its commands are then not checked. Commands that are cheap and local also *run* here
(:data:`RUNS`), through :func:`cdlib.cli.main.main`, and must exit 0.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdlib.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]
SHELL_FENCES = {"", "sh", "console", "bash", "shell", "shell-session"}
FENCE = re.compile(r"^\s*```\s*([\w-]*)")
MARKER = re.compile(r"<!--\s*example commands\b.*?-->")
#: ``$ `` prompt, ``VAR=value`` words, a path to the executable, then ``cdlib WORD``.
COMMAND = re.compile(r"^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\S*/)?cdlib\s+(-|[a-z]).*")
#: In a docstring: an indented line, or one after a label ("Run it here:   cdlib run ...").
DOC_COMMAND = re.compile(r"(?:^\s+|:\s{2,})((?:\S*/)?cdlib\s+[a-z-].*)$")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(@[A-Z][A-Z_]*)?$")


def _markdown_commands(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line, command, marked) of each command line in ``text``'s shell code blocks."""
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        m = FENCE.match(lines[n])
        if not m:
            n += 1
            continue
        start, lang = n, m.group(1)
        marked = any(MARKER.search(lines[k]) for k in range(max(0, start - 3), start))
        n += 1
        block: list[tuple[int, str]] = []
        while n < len(lines) and not FENCE.match(lines[n]):
            block.append((n + 1, lines[n].rstrip()))
            n += 1
        n += 1
        if lang not in SHELL_FENCES:
            continue
        prompted = any(line.lstrip().startswith("$ ") for _, line in block)
        i = 0
        while i < len(block):
            where, line = block[i][0], block[i][1].strip()
            # A continued line: a trailing backslash, or a synopsis's indented "[" or "(".
            while i + 1 < len(block) and (
                line.endswith("\\") or re.match(r"\s+[\[(]", block[i + 1][1])
            ):
                i += 1
                line = line.removesuffix("\\").rstrip() + " " + block[i][1].strip()
            i += 1
            if (not prompted or line.startswith("$ ")) and COMMAND.match(line):
                yield where, line, marked


def _docstring_commands(text: str) -> Iterator[tuple[int, str, bool]]:
    for n, line in enumerate(text.splitlines(), 1):
        m = DOC_COMMAND.search(line)
        if m:
            yield n, m.group(1), False


def commands() -> list[tuple[str, str, bool]]:
    """(file:line, command line, marked) of every command the docs show."""
    found = []
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    for p in pages:
        for n, line, marked in _markdown_commands(p.read_text()):
            found.append((f"{p.relative_to(REPO)}:{n}", line, marked))
    for p in sorted((REPO / "playbooks").glob("*.py")):
        doc = ast.get_docstring(ast.parse(p.read_text()), clean=False) or ""
        for n, line, marked in _docstring_commands(doc):
            found.append((f"{p.relative_to(REPO)}:{n + 1}", line, marked))
    return found


def argv_of(line: str, fill: bool = True) -> list[str]:
    """The words after ``cdlib`` that the parser sees, placeholders filled in (``fill``)."""
    line = re.sub(r"^\$\s+", "", line)
    # A synopsis: every optional part present, the first of alternatives, no "...".
    while re.search(r"[\[(][^\[\]()]*[\])]", line):
        line = re.sub(r"[\[(]([^\[\]()]*)[\])]", lambda m: m.group(1).split(" | ")[0], line)
    line = line.replace("...", " ")
    words = shlex.split(line, comments=True)
    start = next(i for i, w in enumerate(words) if w == "cdlib" or w.endswith("/cdlib"))
    argv = []
    for w in words[start + 1 :]:
        if w in {">", ">>", "|", "2>", "&&", ";"}:
            break
        w = w.split("|")[0] if re.fullmatch(r"[\w-]+(\|[\w-]+)+", w) else w  # a|b: a
        if fill and PLACEHOLDER.match(w):
            w = "1" if w in {"N", "S"} else re.sub(r"[A-Z_]+", "demo", w)
        argv.append(w)
    return argv


def problem(line: str) -> str | None:
    """Why ``line`` would not parse as written, or ``None`` when it does.

    Capitals are tried as written first (``--state DISABLED`` is a value), then as
    placeholders.
    """
    first_try = _problem(argv_of(line, fill=False))
    return first_try and _problem(argv_of(line))


def _problem(argv: list[str]) -> str | None:
    if "--" in argv:  # the words after it are for the hosts (cdlib exec), as in main()
        argv = argv[: argv.index("--")]
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first)
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exc:
        return f"usage error (exit {exc.code})"
    if extras:
        return f"unknown arguments {extras}"
    if args.command is None and argv and argv != ["--help"]:
        return "no command"
    return None


COMMANDS = commands()


def test_the_collector_finds_the_known_commands() -> None:
    # Guards the collector: these are in the docs today, in each kind of place.
    where = {w.split(":")[0] for w, _, _ in COMMANDS}
    assert {"README.md", "docs/cli.md", "docs/flags.md", "playbooks/hello.py"} <= where
    lines = {line for _, line, _ in COMMANDS}
    assert "$ cdlib flags lint flags.yaml" in lines
    assert not any("serving http" in line for line in lines)  # output, not a command


@pytest.mark.parametrize(
    "where,line,marked", COMMANDS, ids=[f"{w} {c[:60]}" for w, c, _ in COMMANDS]
)
def test_doc_command_parses(where: str, line: str, marked: bool) -> None:
    if marked:
        pytest.skip("an example for another environment")
    p = problem(line)
    assert p is None, f"{where}: `{line}` does not run as written: {p}"


def test_a_command_that_does_not_parse_fails() -> None:
    assert problem("cdlib run playbooks/hello.py --inventory-file x") is not None
    assert problem("cdlib resume web") is not None
    assert problem("$ cdlib flags set flags.json x --ramp 10 --audit-file a.jsonl") is not None
    assert problem("cdlib vault rekey FILE... [--new-vault-password-file FILE | --x]") is None
    text = "<!-- example commands: cdlib 9 -->\n```sh\ncdlib resume web\n```\n"
    assert list(_markdown_commands(text)) == [(3, "cdlib resume web", True)]
    text = "```console\n$ cdlib abort \\\n  web\ncdlib abort: done\n```\n"
    assert list(_markdown_commands(text)) == [(2, "$ cdlib abort web", False)]


#: Commands the docs show that are cheap and local: they run here and must exit 0.
RUNS = [
    ["--help"],
    ["inventory", "--list", "-i", "inventories/local.yml"],
    ["inventory", "--graph", "-i", "inventories/local.yml"],
    ["run", "playbooks/hello.py", "-i", "inventories/local.yml", "--help"],
]


@pytest.mark.parametrize("argv", RUNS, ids=[" ".join(a) for a in RUNS])
def test_local_doc_command_runs(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    try:
        code = main(argv)
    except SystemExit as exc:  # --help exits through argparse
        code = exc.code  # type: ignore[assignment]
    assert code == 0, capsys.readouterr()
    assert capsys.readouterr().out.strip()


#: docs/flags.md's walk-through, on a flag file of the page's shape (``flags.json`` is yours).
FLAG_WALK = [
    "flags set flags.json new-checkout --ramp 10 --audit-log audit.jsonl",
    "flags set flags.json new-checkout --ramp 50 --audit-log audit.jsonl",
    "flags set flags.json new-checkout --kill --audit-log audit.jsonl",
    "flags list flags.json",
    "flags show flags.json new-checkout",
]


def test_the_flags_walkthrough_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (REPO / "docs" / "flags.md").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flags.json").write_text(
        '{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false},'
        ' "defaultVariant": "off", "metadata": {"owner": "shop"}}}}'
    )
    assert main(["flags", "lint", "flags.json"]) == 0, capsys.readouterr()  # a clean file
    for command in FLAG_WALK:
        assert f"cdlib {command}" in page, command  # still what the page shows
        assert main(command.split()) == 0, (command, capsys.readouterr())
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 3
