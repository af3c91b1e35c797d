"""cdlib's inventories against the real thing: ansible-core as the oracle.

For each fixture, ``cdlib inventory --list`` must print the same JSON as
``ansible-inventory --list`` and host patterns must select the same hosts, in the same
order, as ``ansible -i SRC PATTERN --list-hosts``. ansible-core comes with the ``test``
extra; without it these tests are skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cdlib.cli.inventory import run as cdlib_inventory
from cdlib.inventory import PatternError, load_inventory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventory"
ORACLE = Path(__file__).resolve().parent.parent / "oracle" / "ansible_patterns.py"


def _ansible_tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


ANSIBLE_INVENTORY = _ansible_tool("ansible-inventory")
ANSIBLE = _ansible_tool("ansible")
pytestmark = pytest.mark.skipif(
    ANSIBLE_INVENTORY is None or importlib.util.find_spec("ansible") is None,
    reason="ansible-core is not installed (it is in the 'test' extra: pip install -e '.[test]')",
)

#: name -> (inventory sources relative to FIXTURES, extra vars arguments)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "ini": (["ini_basic/hosts.ini"], []),
    "yaml": (["yaml_nested/inventory.yml"], []),
    "json": (["json_inv/inventory.json"], []),
    "precedence": (["precedence/hosts.ini"], []),
    "multi": (["multi/a/hosts.ini", "multi/b/more.yml"], []),
    "directory": (["invdir"], []),
    "noext": (["noext/hosts", "noext/inventory"], []),
    "mixed-extra": (["invdir", "multi/b/more.yml"], ["-e", "who=cli", "-e", '{"n": 5}']),
    "hostlist": (["x1,x2:2200,", "noext/hosts"], []),
    "playbook-dir": (["precedence/hosts.ini"], ["--playbook-dir", "{fixtures}/playbook_dir"]),
    "playbook-dir-multi": (
        ["multi/a/hosts.ini", "multi/b/more.yml"],
        ["--playbook-dir", "{fixtures}/playbook_dir", "-e", "level=cli"],
    ),
}


def _env(tmp: Path) -> dict[str, str]:
    cfg = tmp / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_HOME": str(tmp / "home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "tmp"),
        # A fixture Ansible cannot read must fail loudly, not be skipped with a warning.
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "ANSIBLE_NOCOLOR": "1",
    }


def _sources(name: str) -> list[str]:
    return [s if "," in s else str(FIXTURES / s) for s in CASES[name][0]]


def _inventory_args(name: str) -> list[str]:
    args: list[str] = []
    for s in _sources(name):
        args += ["-i", s]
    return args + [a.replace("{fixtures}", str(FIXTURES)) for a in CASES[name][1]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_list_matches_ansible_inventory(name: str, tmp_path: Path) -> None:
    assert ANSIBLE_INVENTORY is not None
    proc = subprocess.run(
        [ANSIBLE_INVENTORY, *_inventory_args(name), "--list"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout)
    # ansible-core 2.19 adds the name of its serialisation profile; not inventory data.
    expected["_meta"].pop("profile", None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cdlib_inventory([*_inventory_args(name), "--list"]) == 0
    assert json.loads(out.getvalue()) == expected


@pytest.mark.parametrize("name", ["ini", "yaml", "precedence", "multi"])
def test_graph_matches_ansible_inventory(name: str, tmp_path: Path) -> None:
    assert ANSIBLE_INVENTORY is not None
    proc = subprocess.run(
        [ANSIBLE_INVENTORY, *_inventory_args(name), "--graph"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cdlib_inventory([*_inventory_args(name), "--graph"]) == 0
    assert out.getvalue().strip() == proc.stdout.strip()


#: Patterns for every fixture: (pattern, limit). Together they cover each pattern form.
COMMON_PATTERNS: list[tuple[str, str | None]] = [
    ("all", None),
    ("*", None),
    ("ungrouped", None),
    ("localhost", None),
    ("nomatch", None),
    ("nomatch:all", None),
    ("!ungrouped", None),
    ("&all", None),
    ("all[0]", None),
    ("all[-1]", None),
    ("all[1:3]", None),
    ("all[2:]", None),
    ("all", "all[0:1]"),
    ("~.*1$", None),
    ("*[12]", None),
    ("*.example.com", None),
]
# fmt: off
PATTERNS: dict[str, list[tuple[str, str | None]]] = {
    "ini": [
        ("web", None), ("web:db", None), ("web,db", None), ("db:web", None),
        ("web:&prod", None), ("prod:!web", None), ("web:!canary", None), ("prod:&canary", None),
        ("web*", None), ("web-*", None), ("~web\\d+", None), ("~web-[ab]", None),
        ("web[0]", None), ("web[0:2]", None), ("web[-1]", None), ("web[1:]", None),
        ("web[20]", None), ("web[5:9]", None), ("db[1]", None), ("canary:db:web", None),
        ("web01.example.com", None), ("alpha:beta:gamma.example.com", None),
        ("prod", "web"), ("web", "!canary"), ("all", "db:canary"), ("web:db", "prod[2:5]"),
        ("p*", None), ("*a", None), ("delta,web[0],!alpha", None), ("empty", None),
        ("prod:&web:!web04.example.com", None), ("!web", None), ("web , db", None),
    ],
    "yaml": [
        ("eu", None), ("us", None), ("eu:us", None), ("us:eu", None), ("eu_web", None),
        ("eu_web:&us", None), ("eu:!eu_web_canary", None), ("standalone:lonely", None),
        ("web-eu-*", None), ("~^web-(eu|us)", None), ("eu[1:2]", None), ("eu_*", None),
        ("10.1.0.5", None), ("10.1.0.*", None), ("eu", "us"), ("all", "~db"),
    ],
    "precedence": [
        ("prod", None), ("web", None), ("web:!canary", None), ("edge:web", None),
        ("web:edge", None), ("web:&edge", None), ("prod[1]", None), ("canary:prod", None),
    ],
    "multi": [
        ("web", None), ("cache:web", None), ("prod:!cache", None), ("web:&cache", None),
        ("prod", "web[0:1]"), ("web[-2:]", None),
    ],
    "directory": [("app", None), ("late:app", None), ("app:!late", None), ("worker,app[3]", None)],
    "noext": [("web", None), ("y1:w1", None)],
    "json": [("web", None), ("web_canary:web", None), ("web:!web_canary", None)],
}
# fmt: on


@cache
def _oracle(name: str) -> list[Any]:
    cases = COMMON_PATTERNS + PATTERNS.get(name, [])
    request = json.dumps({"sources": _sources(name), "cases": cases})
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"cdlib-oracle-{os.getpid()}-{name}"
    tmp.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(ORACLE)],
        input=request, capture_output=True, text=True, env=_env(tmp), timeout=120, check=False,
    )  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


PATTERN_CASES = [
    (name, i, pattern, limit)
    for name in sorted(PATTERNS)
    for i, (pattern, limit) in enumerate(COMMON_PATTERNS + PATTERNS[name])
]


@pytest.mark.parametrize(("name", "index", "pattern", "limit"), PATTERN_CASES)
def test_pattern_matches_ansible(name: str, index: int, pattern: str, limit: str | None) -> None:
    expected = _oracle(name)[index]
    inv = load_inventory(_sources(name))
    if isinstance(expected, dict):
        with pytest.raises(PatternError):
            inv.select(pattern, limit)
        return
    assert [h.name for h in inv.select(pattern, limit)] == expected


@pytest.mark.skipif(ANSIBLE is None, reason="the ansible command is not installed")
def test_oracle_helper_agrees_with_ansible_list_hosts(tmp_path: Path) -> None:
    # The batch oracle must say what 'ansible --list-hosts' says.
    assert ANSIBLE is not None
    pattern, limit = "prod:!canary", "web*:db"
    proc = subprocess.run(
        [ANSIBLE, *_inventory_args("ini"), pattern, "--limit", limit, "--list-hosts"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    listed = [line.strip() for line in proc.stdout.splitlines()[1:] if line.strip()]
    inv = load_inventory(_sources("ini"))
    assert [h.name for h in inv.select(pattern, limit)] == listed
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cdlib_inventory([*_inventory_args("ini"), "--hosts", pattern, "-l", limit]) == 0
    assert out.getvalue().split() == listed


def _random_patterns(name: str, count: int, seed: int) -> list[tuple[str, str | None]]:
    """Patterns built at random from the fixture's own group and host names."""
    import random

    rng = random.Random(seed)
    inv = load_inventory(_sources(name))
    words = [*inv.groups, *inv.hosts, "all", "nomatch"]

    def term() -> str:
        word = rng.choice(words)
        shape = rng.randrange(8)
        if shape == 0:
            word = word[: rng.randrange(1, len(word) + 1)] + "*"
        elif shape == 1:
            word = "~" + word[: rng.randrange(1, len(word) + 1)]
        elif shape == 2 and word in inv.groups:
            word += rng.choice(["[0]", "[-1]", "[0:1]", "[1:]", "[2:3]"])
        return rng.choice(["", "", "", "&", "!"]) + word

    def pattern() -> str:
        terms = [term() for _ in range(rng.randrange(1, 5))]
        return rng.choice([":", ","]).join(terms)

    return [(pattern(), pattern() if rng.random() < 0.2 else None) for _ in range(count)]


@pytest.mark.parametrize("name", ["ini", "yaml", "multi"])
def test_random_patterns_match_ansible(name: str, tmp_path: Path) -> None:
    cases = _random_patterns(name, 150, seed=len(name))
    proc = subprocess.run(
        [sys.executable, str(ORACLE)],
        input=json.dumps({"sources": _sources(name), "cases": cases}),
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    inv = load_inventory(_sources(name))
    for (pattern, limit), expected in zip(cases, json.loads(proc.stdout), strict=True):
        if isinstance(expected, dict):
            with pytest.raises(PatternError):
                inv.select(pattern, limit)
        else:
            got = [h.name for h in inv.select(pattern, limit)]
            assert got == expected, f"pattern {pattern!r} limit {limit!r}"


def test_cdlib_command_prints_what_ansible_inventory_prints(tmp_path: Path) -> None:
    # Through the installed entry point, as a user runs it.
    assert ANSIBLE_INVENTORY is not None
    args = [*_inventory_args("precedence"), "--list"]
    theirs = subprocess.run(
        [ANSIBLE_INVENTORY, *args], capture_output=True, text=True, env=_env(tmp_path),
        timeout=120, check=True,
    )  # fmt: skip
    ours = subprocess.run(
        [sys.executable, "-m", "cdlib", "inventory", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    expected = json.loads(theirs.stdout)
    expected["_meta"].pop("profile", None)
    assert json.loads(ours.stdout) == expected
