"""YAML from users goes through one loader that refuses alias bombs quickly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cdlib._yaml import MAX_EXPANDED_NODES, AliasLimitError, check_expansion, load_yaml_limited
from cdlib.checks.suite import SuiteError
from cdlib.checks.yamlsuite import parse_suite
from cdlib.flags.document import parse_document
from cdlib.flags.errors import FlagFileError
from cdlib.inventory import InventoryError, load_inventory, parse_extra_vars

ROOT = Path(__file__).resolve().parents[2]


def _bomb(levels: int = 9, indent: str = "") -> str:
    """About 700 bytes that stand for 9**levels strings."""
    lines = [f'{indent}l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*l{i - 1}"] * 9)
        lines.append(f"{indent}l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_expansion_is_measured_without_expanding() -> None:
    node = yaml.compose(_bomb(9))
    with pytest.raises(AliasLimitError) as err:
        check_expansion(node)
    assert err.value.problem_mark is not None and "alias" in str(err.value)
    # Shared aliases below the limit are fine and keep their value.
    assert check_expansion(yaml.compose(_bomb(3))) < MAX_EXPANDED_NODES
    assert load_yaml_limited("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(AliasLimitError, match="contains itself"):
        load_yaml_limited("a: &x [1, *x]\n")


def test_cdlib_run_refuses_an_alias_bomb_in_inventory_vars_with_exit_4(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yml"
    inv.write_text("all:\n  hosts:\n    h1:\n  vars:\n" + _bomb(9, indent="    "))
    assert len(inv.read_bytes()) < 800
    pb = tmp_path / "pb.py"
    pb.write_text("from cdlib import Play, tasks\nPlay('p').task(tasks.command('true'))\n")
    # Without the limit this ran for minutes and took gigabytes; the timeout makes it fail.
    proc = subprocess.run(
        [sys.executable, "-m", "cdlib", "run", str(pb), "-i", str(inv)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 4, proc.stderr
    assert f"{inv}:" in proc.stderr and "aliases expand" in proc.stderr


def test_every_user_yaml_goes_through_the_limit(tmp_path: Path) -> None:
    bomb = _bomb(8)  # 43 million strings
    gv = tmp_path / "inv"
    (gv / "group_vars").mkdir(parents=True)
    (gv / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n")
    (gv / "group_vars" / "all.yml").write_text(bomb)
    with pytest.raises(InventoryError, match=r"group_vars/all.yml:\d+: invalid YAML: aliases"):
        load_inventory([gv])
    extra = tmp_path / "extra.yml"
    extra.write_text(bomb)
    with pytest.raises(InventoryError, match=r"extra.yml:\d+: invalid YAML: aliases"):
        parse_extra_vars([f"@{extra}"])
    with pytest.raises(FlagFileError, match=r"flags.yaml:\d+: invalid YAML: aliases"):
        parse_document("flags: {}\n" + bomb, "flags.yaml")
    with pytest.raises(SuiteError, match=r"smoke.yml:\d+:\d+: invalid YAML: aliases"):
        parse_suite("suite: s\n" + bomb, "smoke.yml")
