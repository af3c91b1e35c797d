"""Property tests: any INI, YAML or pattern text gives a result or an InventoryError.

Never a traceback from something else (IndexError, RecursionError, TypeError ...).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdlib.inventory import InventoryError, load_inventory
from cdlib.inventory.export import graph, list_inventory, to_json

# CDLIB_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the suite quick.
SETTINGS = settings(
    max_examples=int(os.environ.get("CDLIB_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text built from the characters that matter to the INI grammar, plus a few others.
_INI_ALPHABET = st.sampled_from(list("[]:=#;'\"\\ \t\n,.-_~*!&@{}()0123456789abcxyzé"))
_INI_LINES = st.one_of(
    st.text(_INI_ALPHABET, max_size=30),
    st.sampled_from(
        [
            "[web]", "[web:vars]", "[web:children]", "[db:children]", "[all:vars]",
            "[ungrouped]", "web", "db", "all", "h[1:3]", "h[a:c]", "h[01:3]", "h[1:5:0]",
            "h:22 x=1", "h y=[1,2", "x=1", "x = 'q'", "ansible_group_priority=2",
            "ansible_group_priority=x", "[g]", "[g:children]", "g", "web:&db", "# c", "; c",
        ]
    ),
)  # fmt: skip


def _load(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        try:
            inv = load_inventory([path])
        except InventoryError:
            return
        # Whatever loaded must also render and answer patterns.
        to_json(list_inventory(inv))
        graph(inv)
        for pattern in ("all", "web:&db:!g", "web[0]", "*"):
            with contextlib.suppress(InventoryError):
                inv.select(pattern)


@SETTINGS
@given(st.lists(_INI_LINES, max_size=25))
def test_ini_text_never_crashes(lines: list[str]) -> None:
    _load("hosts.ini", "\n".join(lines))


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_without_extension_never_crashes(text: str) -> None:
    _load("hosts", text.replace("\x00", ""))


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8),
    st.sampled_from(["hosts", "vars", "children", "all", "web", "h[1:2]", "h:22", "---"]),
)  # fmt: skip
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["hosts", "vars", "children", "all", "web", "db", "h[0:1]"]),
                st.text(max_size=6),
                st.integers(),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=30,
)


@SETTINGS
@given(_TREES)
def test_yaml_structures_never_crash(document: object) -> None:
    _load("inventory.yml", yaml.safe_dump(document))


@SETTINGS
@given(st.text(st.sampled_from(list("all:abc&!~*?[]{}0123456789-,. \\()|^$+")), max_size=25))
def test_patterns_never_crash(pattern: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hosts.ini"
        path.write_text("a1\n[b]\nb1\nb2\n[c:children]\nb\n[c]\nc1\n")
        inv = load_inventory([path])
    with contextlib.suppress(InventoryError):
        inv.select(pattern, limit=pattern or None)


def test_recursive_yaml_alias_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  vars:\n    x: &a [*a]\n")
    try:
        load_inventory([path])
    except InventoryError as exc:
        assert f"{path}:3: invalid YAML: a value contains itself" in str(exc)
    else:
        raise AssertionError("a recursive alias must be refused")
