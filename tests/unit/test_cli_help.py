"""Every subcommand's --help exits 0 and says what the command does; typos get suggestions."""

from __future__ import annotations

import pytest

from cdlib.cli.main import main

SUBCOMMANDS = [
    ["run"],
    ["inventory"],
    ["flags"],
    ["flags", "eval"],
    ["flags", "list"],
    ["flags", "show"],
    ["flags", "set"],
    ["flags", "lint"],
    ["status"],
    ["history"],
    ["promote"],
    ["abort"],
    ["rollback"],
    ["unlock"],
]


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _description(text: str) -> str:
    # argparse prints: usage block, blank line, description, blank line, arguments.
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    assert paragraphs[0].startswith("usage:")
    desc = paragraphs[1]
    assert not desc.startswith(("positional arguments:", "options:")), "no description"
    return " ".join(desc.split())


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help([], capsys)
    assert "Continuous delivery" in _description(text)
    for argv in SUBCOMMANDS:
        if len(argv) == 1:
            assert f"\n    {argv[0]}" in text, f"{argv[0]} missing from cdlib --help"


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=[" ".join(a) for a in SUBCOMMANDS])
def test_subcommand_help_has_a_description(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(argv, capsys)
    assert text.startswith(f"usage: cdlib {' '.join(argv)}")
    desc = _description(text)
    # A sentence, not a stub: several words ending like prose.
    assert len(desc.split()) >= 6, desc


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["statsu", "app"], "did you mean 'status'"),
        (["flags", "lsit", "f.json"], "did you mean 'list'"),
        (["unlock", "app", "--froce"], "--force"),
        # argparse reports the missing required option first; the hint still names the typo.
        (["inventory", "-i", "inv.yml", "--lsit"], "--lsit -> --list"),
        (["run", "--chekc"], "--chekc -> --check"),
    ],
)
def test_typos_suggest(argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 5
    assert hint in capsys.readouterr().err
