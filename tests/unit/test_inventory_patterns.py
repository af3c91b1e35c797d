"""Host patterns, connection variables and the ``cdlib inventory`` command."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from cdlib.cli.inventory import run as cdlib_inventory
from cdlib.inventory import (
    Host,
    InventoryError,
    PatternError,
    load_inventory,
    parse_extra_vars,
)

INI = """
solo
[web]
web1
web2
web3 ansible_become=yes
[db]
db1 ansible_ssh_host=10.0.0.9 ansible_ssh_port=2202 ansible_ssh_user=pg
db2 ansible_connection=local ansible_private_key_file=~/.ssh/db
[canary]
web3
[prod:children]
db
web
[all:vars]
ansible_password=hunter2
api_token=abc123
custom_thing=kept
"""


@pytest.fixture
def inv_path(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text(INI)
    return path


def _names(hosts: list[Host]) -> list[str]:
    return [h.name for h in hosts]


def test_pattern_forms_and_ansible_order(inv_path: Path) -> None:
    inv = load_inventory([inv_path])
    assert _names(inv.select("web")) == ["web1", "web2", "web3"]
    # Plain terms keep the order written; this is Ansible's behaviour, not inventory order.
    assert _names(inv.select("db:web")) == ["db1", "db2", "web1", "web2", "web3"]
    assert _names(inv.select("web,db")) == ["web1", "web2", "web3", "db1", "db2"]
    # '!' and '&' apply after all plain terms, wherever they are written.
    assert _names(inv.select("!canary:web")) == ["web1", "web2"]
    assert _names(inv.select("web:&canary")) == ["web3"]
    assert _names(inv.select("&canary")) == ["web3"]  # no plain term: starts from all
    assert _names(inv.select("web*")) == ["web1", "web2", "web3"]
    assert _names(inv.select("~(web|db)1")) == ["web1", "db1"]
    assert _names(inv.select("web[0]")) == ["web1"]
    assert _names(inv.select("web[0:1]")) == ["web1", "web2"]
    assert _names(inv.select("web[-1]")) == ["web3"]
    assert _names(inv.select("web[1:]")) == ["web2", "web3"]
    assert _names(inv.select("prod")) == ["db1", "db2", "web1", "web2", "web3"]
    # all: its children breadth-first (canary before prod, which holds db and web).
    assert _names(inv.select("all")) == ["solo", "web3", "db1", "db2", "web1", "web2"]
    assert _names(inv.select(["web", "!web2"])) == ["web1", "web3"]
    assert _names(inv.select("prod", limit="web:solo")) == ["web1", "web2", "web3"]
    assert inv.select("nothing") == []


def test_limit_file_and_errors(inv_path: Path, tmp_path: Path) -> None:
    inv = load_inventory([inv_path])
    limit = tmp_path / "retry"
    limit.write_text("web2\n\ndb1\n")
    assert _names(inv.select("all", limit=f"@{limit}")) == ["db1", "web2"]
    with pytest.raises(PatternError, match="limit file"):
        inv.select("all", limit=f"@{tmp_path / 'none'}")
    with pytest.raises(PatternError, match=r"'web\[7\]'.*out of range"):
        inv.select("web[7]")
    with pytest.raises(PatternError, match=r"invalid host pattern '~web\('"):
        inv.select("~web(")
    with pytest.raises(PatternError, match="empty"):
        inv.select(" , ")
    with pytest.raises(PatternError, match="'nope:&web' matches no host"):
        inv.select_or_error("nope:&web")
    with pytest.raises(PatternError, match="with limit 'db'"):
        inv.select_or_error("web", limit="db")
    assert issubclass(PatternError, InventoryError)


def test_implicit_localhost(inv_path: Path) -> None:
    inv = load_inventory([inv_path], {"e": 1})
    (local,) = inv.select("localhost")
    assert local.implicit and local.connection == "local"
    assert local.vars["custom_thing"] == "kept" and local.vars["e"] == 1
    assert "localhost" not in _names(inv.select("all"))


def test_connection_variables(inv_path: Path) -> None:
    inv = load_inventory([inv_path], {"extra": "x"})
    db1, db2, web3 = inv.hosts["db1"], inv.hosts["db2"], inv.hosts["web3"]
    assert (db1.address, db1.port, db1.user, db1.connection) == ("10.0.0.9", 2202, "pg", "ssh")
    assert (db2.connection, db2.key_file) == ("local", "~/.ssh/db")
    assert web3.become and not db1.become and web3.become_user == "root"
    assert (inv.hosts["solo"].address, inv.hosts["solo"].port) == ("solo", 22)
    assert db1.vars["custom_thing"] == "kept" and db1.vars["extra"] == "x"
    assert db1.group_names == ["db", "prod"]
    bad = Host("h", {"ansible_port": "ssh"})
    with pytest.raises(InventoryError, match="ansible_port must be a number"):
        _ = bad.port


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cdlib_inventory(list(args))
    return code, out.getvalue(), err.getvalue()


def test_cli_hosts_host_graph_and_secrets(inv_path: Path) -> None:
    code, out, _ = _cli("-i", str(inv_path), "--hosts", "db:web:!web2", "-l", "prod")
    assert (code, out.split()) == (0, ["db1", "db2", "web1", "web3"])
    code, out, _ = _cli("-i", str(inv_path), "--host", "db1", "-e", "port=1 name='a b'")
    shown = json.loads(out)
    assert shown["port"] == "1" and shown["name"] == "a b"
    # Secrets are never printed; other variables are.
    assert shown["ansible_password"] == "********" and shown["api_token"] == "********"
    assert "hunter2" not in out and shown["custom_thing"] == "kept"
    code, out, _ = _cli("-i", str(inv_path), "--list")
    assert "hunter2" not in out and "abc123" not in out
    code, out, _ = _cli("-i", str(inv_path), "--graph", "prod")
    assert out.splitlines()[:3] == ["@prod:", "  |--@db:", "  |  |--db1"]


def test_cli_errors_exit_non_zero(inv_path: Path, tmp_path: Path) -> None:
    code, out, err = _cli("-i", str(inv_path), "--hosts", "nothing*")
    assert code == 4 and out == "" and "'nothing*' matches no host" in err
    code, _, err = _cli("-i", str(inv_path), "--host", "web")
    assert code == 4 and "matches 3" in err
    code, _, err = _cli("-i", str(inv_path), "--graph", "web1")
    assert code == 4 and "not a group" in err
    bad = tmp_path / "bad.ini"
    bad.write_text("[web\n")
    code, _, err = _cli("-i", str(bad), "--list")
    assert code == 4 and f"{bad}:1:" in err
    code, _, err = _cli("-i", str(inv_path), "--list", "-e", "novalue")
    assert code == 4 and "key=value" in err


def test_extra_vars_forms(tmp_path: Path) -> None:
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("a: 1\nb: [x]\n")
    merged = parse_extra_vars(["a=0 c='two words'", '{"d": true}', f"@{vars_file}", "a=last"])
    assert merged == {"a": "last", "c": "two words", "d": True, "b": ["x"]}
    with pytest.raises(InventoryError, match="mapping"):
        parse_extra_vars(["[1, 2]"])
    with pytest.raises(InventoryError, match="cannot read"):
        parse_extra_vars([f"@{tmp_path / 'missing.yml'}"])


def test_errors_do_not_echo_secret_fragments(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nw1 ansible_password=open sesame\n")
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert "sesame" not in str(info.value) and "ansible_password=" in str(info.value)
    with pytest.raises(InventoryError) as info:
        parse_extra_vars(["api_token=abc def"])
    assert "def" not in str(info.value)


def test_inventory_built_in_code_gets_all_and_ungrouped() -> None:
    from cdlib.inventory import Group, Inventory

    inv = Inventory([Host("a"), Host("b")], {"web": Group("web", hosts=["b"])})
    assert inv.groups["all"].children == ["ungrouped", "web"]
    assert inv.groups["ungrouped"].hosts == ["a"]
    assert _names(inv.select("all")) == ["a", "b"]
    assert _names(inv.select("all:!web")) == ["a"]


def test_group_names_come_from_the_group_table_of_a_code_built_inventory(tmp_path: Path) -> None:
    """Hosts listed in groups given in full, with no groups on the Host objects."""
    from cdlib import Play, tasks
    from cdlib.inventory.model import Group, Inventory

    inv = Inventory(
        [
            Host("web1", {"ansible_connection": "local"}),
            Host("db1", {"ansible_connection": "local"}),
        ],
        {
            "all": Group("all", children=["prod"]),
            "prod": Group("prod", children=["web"], hosts=["db1"]),
            "web": Group("web", hosts=["web1"]),
        },
    )
    play = Play("p", hosts="all")
    play.task(
        tasks.file(
            f"{tmp_path}/{{{{ inventory_hostname }}}}", content="{{ group_names | join(',') }}"
        )
    )
    import cdlib

    assert cdlib.run(play, inv).ok
    assert (tmp_path / "web1").read_text() == "prod,web"
    assert (tmp_path / "db1").read_text() == "prod"


def test_one_inventory_path_may_be_given_alone(tmp_path: Path) -> None:
    from cdlib.inventory import load_inventory

    ini = tmp_path / "hosts.ini"
    ini.write_text("u1\n[web]\nw1\n")
    assert list(load_inventory(str(ini)).hosts) == list(load_inventory([ini]).hosts) == ["u1", "w1"]
