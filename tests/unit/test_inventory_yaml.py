"""YAML/JSON inventories, vars files, several sources and Python inventories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdlib.inventory import InventoryError, load_inventory


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_nested_children_to_any_depth(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        "inv.yml",
        "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n"
        "            c:\n              children:\n                d:\n                  hosts:\n"
        "                    deep: {x: 1}\n",
    )
    inv = load_inventory([src])
    assert inv.hosts["deep"].groups == ["a", "b", "c", "d"]
    assert [inv.groups[g].depth for g in "abcd"] == [1, 2, 3, 4]
    assert [h.name for h in inv.select("a")] == ["deep"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("all:\n  hosts:\n    a: [1\n", 4, "invalid YAML"),
        ("all:\n  children:\n    web:\n      host:\n        a:\n", 4, "unexpected key 'host'"),
        ("all:\n  children:\n    web: [a, b]\n", 3, "must be a mapping"),
        ("all:\n  hosts:\n    a: 5\n", 3, "variables of host 'a'"),
        ("all:\n  hosts:\n    42:\n", 3, "must be text"),
        ("all:\n  vars: [1]\n", 2, "'vars' of group 'all' must be a mapping"),
        ("a:\n  children:\n    b:\n      children:\n        a:\n", 4, "loop"),
        ("all:\n  hosts:\n    x: !vault |\n      abc\n", 3, "not vault-encrypted"),
    ],
)
def test_yaml_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, "inv.yml", text)
    with pytest.raises(InventoryError, match=message) as info:
        load_inventory([path])
    assert str(info.value).startswith(f"{path}:{line}:")


def test_yaml_whole_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="mapping of groups"):
        load_inventory([_write(tmp_path, "inv.yaml", "- a\n- b\n")])
    # Empty or comment-only files are empty inventories, as in Ansible.
    for name, text in [("e.yml", ""), ("c.yaml", "# nothing yet\n"), ("e.json", " \n")]:
        assert load_inventory([_write(tmp_path, name, text)]).hosts == {}
    with pytest.raises(InventoryError, match=r"inv\.json:2: invalid JSON"):
        load_inventory([_write(tmp_path, "inv.json", '{"all":\n  {,}}')])
    with pytest.raises(InventoryError, match="plugin 'constructed' is not supported"):
        load_inventory([_write(tmp_path, "c.yml", "plugin: constructed\n")])
    with pytest.raises(InventoryError, match="must be in a file whose name ends"):
        load_inventory([_write(tmp_path, "c.yml", "plugin: amazon.aws.aws_ec2\n")])


def test_unsafe_tag_and_string_sections(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        "inv.yml",
        "web:\n  hosts: only1\n  vars:\n    raw: !unsafe '{{ not templated }}'\n",
    )
    inv = load_inventory([src])
    assert inv.hosts["only1"].vars == {"raw": "{{ not templated }}"}


def test_vars_file_errors(tmp_path: Path) -> None:
    src = _write(tmp_path, "hosts.ini", "[web]\nw1\n")
    _write(tmp_path, "group_vars/web.yml", "- not\n- a mapping\n")
    with pytest.raises(InventoryError, match=r"group_vars/web\.yml:1: a vars file must hold"):
        load_inventory([src])
    _write(tmp_path, "group_vars/web.yml", "a: [\n")
    with pytest.raises(InventoryError, match=r"group_vars/web\.yml:2: invalid YAML"):
        load_inventory([src])


def test_vars_directory_sorted_and_ext_filter(tmp_path: Path) -> None:
    src = _write(tmp_path, "hosts.ini", "[web]\nw1\n")
    _write(tmp_path, "group_vars/web/b.yml", "x: b\n")
    _write(tmp_path, "group_vars/web/a.yml", "x: a\ny: a\n")
    _write(tmp_path, "group_vars/web/c.txt", "x: ignored\n")
    _write(tmp_path, "group_vars/web/sub/z", "z: 1\n")
    _write(tmp_path, "group_vars/web/.hidden.yml", "x: hidden\n")
    _write(tmp_path, "host_vars/w1.json", '{"h": true}')
    inv = load_inventory([src], {"y": "extra"})
    assert inv.hosts["w1"].vars == {"x": "b", "y": "extra", "z": 1, "h": True}
    # A group's vars include its group_vars files, as in Ansible.
    assert inv.groups["web"].vars == {"x": "b", "y": "a", "z": 1}


def test_list_format_round_trip(tmp_path: Path) -> None:
    from cdlib.inventory.export import list_inventory

    src = _write(
        tmp_path, "hosts.ini", "a x=1\n[web]\nw1 p=2\nw2\n[prod:children]\nweb\n[all:vars]\nz=0\n"
    )
    first = list_inventory(load_inventory([src]))
    dumped = _write(tmp_path, "dump/inventory.json", json.dumps(first))
    again = list_inventory(load_inventory([dumped]))
    assert again == first


PYTHON_INVENTORY = """
def inventory(extra_vars):
    n = int(extra_vars.get("count", 2))
    return {
        "all": {
            "vars": {"ansible_user": "deploy"},
            "children": {"web": {"hosts": {f"web{i}": {"idx": i} for i in range(n)}}},
        }
    }
"""


def test_python_inventory_function_and_constant(tmp_path: Path) -> None:
    src = _write(tmp_path, "inv.py", PYTHON_INVENTORY)
    inv = load_inventory([src], {"count": "3"})
    assert list(inv.hosts) == ["web0", "web1", "web2"]
    assert inv.hosts["web2"].vars == {"ansible_user": "deploy", "idx": 2, "count": "3"}
    assert inv.hosts["web0"].user == "deploy"
    const = _write(tmp_path, "const.py", "INVENTORY = {'db': {'hosts': {'db1': None}}}\n")
    assert list(load_inventory([const]).hosts) == ["db1"]
    script = _write(
        tmp_path,
        "script.py",
        "def inventory():\n"
        "    return {'web': ['a', 'b'], '_meta': {'hostvars': {'a': {'x': 1}}}}\n",
    )
    inv = load_inventory([script])
    assert inv.groups["web"].hosts == ["a", "b"] and inv.hosts["a"].vars == {"x": 1}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("x = 1\n", "must define a function inventory"),
        ("def inventory():\n    return [1]\n", "must return a mapping"),
        ("\n\ndef inventory():\n    return 1 / 0\n", r"inv\.py:4: the Python inventory failed"),
        ("def broken(:\n", r"inv\.py:1: the Python inventory failed: SyntaxError"),
        ("def inventory():\n    return {'web': 5}\n", "group 'web' must be a mapping"),
    ],
)
def test_python_inventory_errors(tmp_path: Path, code: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        load_inventory([_write(tmp_path, "inv.py", code)])


def test_auto_detects_yaml_or_ini_without_extension(tmp_path: Path) -> None:
    assert list(load_inventory([_write(tmp_path, "a", "all:\n  hosts:\n    y:\n")]).hosts) == ["y"]
    assert list(load_inventory([_write(tmp_path, "b", "x1\nx2 v=1\n")]).hosts) == ["x1", "x2"]
    with pytest.raises(InventoryError, match=r"b:2: expected key=value"):
        load_inventory([_write(tmp_path, "b", "x1\nx2 v 1\n")])
