"""INI inventories: values, ranges, ports, sections, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdlib.inventory import InventoryError, load_inventory
from cdlib.inventory._address import expand_ranges, split_host_pattern
from cdlib.inventory.ini import parse_value


def _ini(tmp_path: Path, text: str, name: str = "hosts.ini") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8080", 8080),
        ("1.5", 1.5),
        ("True", True),
        ("true", "true"),  # not a Python literal: stays text
        ("None", None),
        ("[1, 'a']", [1, "a"]),
        ("(1, 2)", [1, 2]),
        ("{'a': 1}", {"a": 1}),
        ("'quoted'", "quoted"),
        ("hello world", "hello world"),
        ("", ""),
        ("1+2j", "(1+2j)"),
        ("...", "..."),
        ("0x10", 16),
    ],
)
def test_values_are_python_literals_or_text(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_ranges_expand_like_ansible() -> None:
    assert expand_ranges("web[01:03].x") == ["web01.x", "web02.x", "web03.x"]
    assert expand_ranges("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand_ranges("n[1:10:3]") == ["n1", "n4", "n7", "n10"]
    assert expand_ranges("r[1:2]c[a:b]") == ["r1ca", "r1cb", "r2ca", "r2cb"]
    assert expand_ranges("x[:2]") == ["x0", "x1", "x2"]
    for bad in ("x[1:]", "x[01:100]", "x[c:a]", "x[1:5:0]", "x[1]", "x[a:5]"):
        with pytest.raises(InventoryError, match="range"):
            expand_ranges(bad)


def test_split_host_pattern() -> None:
    assert split_host_pattern("web:db") == ["web", "db"]
    assert split_host_pattern("web,db:x") == ["web", "db:x"]
    assert split_host_pattern("web[0:2]") == ["web[0:2]"]
    assert split_host_pattern("web[0:2]:!db") == ["web[0:2]", "!db"]
    assert split_host_pattern("fe80::1") == ["fe80::1"]
    assert split_host_pattern("host:22") == ["host:22"]
    assert split_host_pattern(" a , b ") == ["a", "b"]


def test_host_lines_sections_and_vars(tmp_path: Path) -> None:
    inv = load_inventory(
        [
            _ini(
                tmp_path,
                "a:2222 x=1 s='two words' t=\"[1, 2]\"\n"
                "[web]\nw[1:2] # comment\n[web:vars]\nport = 8080\nname=a b # kept\n"
                "[all:vars]\nport=1\n[fe]\n[fe:children]\nweb\n[v6]\n[::1]:2200\nfe80::2\n",
            )
        ]
    )
    a = inv.hosts["a"]
    assert a.vars == {"ansible_port": 2222, "x": 1, "s": "two words", "t": [1, 2], "port": 1}
    assert a.port == 2222
    assert inv.hosts["w1"].vars == {"port": 8080, "name": "a b # kept"}
    assert inv.hosts["w1"].groups == ["fe", "web"]
    assert inv.groups["fe"].children == ["web"]
    assert inv.hosts["::1"].port == 2200
    assert "fe80::2" in inv.hosts
    assert list(inv.groups["all"].children) == ["ungrouped", "fe", "v6"]
    assert inv.groups["ungrouped"].hosts == ["a"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[web]\nok\nbad host x\n", 3, "expected key=value"),
        ("[web]\nh 'unclosed\n", 2, "cannot parse host line"),
        ("h\n[web name]\n", 2, "invalid section header"),
        ("[web:hosts2]\n", 1, "unknown type"),
        ("[web:vars]\nx=1\n", 1, "not defined anywhere"),
        ("[p:children]\nghost\n", 2, "names group 'ghost'"),
        ("[g]\nh\n[g:vars]\njust a line\n", 4, "expected key=value"),
        ("[a:children]\nb\n[b:children]\na\n", 4, "loop"),
        ("[a:children]\na\n", 2, "loop"),
        ("[g]\nweb[1:x]\n", 2, "range"),
        ("[g]\nhost:\n", 2, "trailing ':'"),
        ("[g]\n---\n", 2, "YAML"),
        ("[g:vars]\nansible_group_priority=high\n[g]\n", 2, "must be a number"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _ini(tmp_path, text)
    with pytest.raises(InventoryError, match=message) as info:
        load_inventory([path])
    assert str(info.value).startswith(f"{path}:{line}:")


def test_all_cannot_be_a_child(tmp_path: Path) -> None:
    # 'all' under web, and web under all: a loop, reported instead of hanging.
    with pytest.raises(InventoryError, match="loop"):
        load_inventory([_ini(tmp_path, "[web:children]\nall\n[web]\n")])


def test_unknown_file_type_names_the_accepted_formats(tmp_path: Path) -> None:
    path = _ini(tmp_path, "a\n", name="hosts.toml")
    with pytest.raises(InventoryError, match=r"unknown inventory file type '\.toml'.*YAML"):
        load_inventory([path])


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="not found"):
        load_inventory([tmp_path / "nope.ini"])


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_bytes(b"[web]\nh\xff\n")
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory([path])
