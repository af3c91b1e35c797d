"""Vault envelope, password sources and secret tags (the oracle tests are integration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdlib.inventory import InventoryError, load_inventory
from cdlib.secret import Secret
from cdlib.vault import Keyring, VaultPassword, VaultPasswordError, build_keyring, encrypt
from cdlib.vault.envelope import VaultFormatError, parse


def test_round_trip_and_header_with_and_without_label() -> None:
    text = encrypt(b"hello\n", b"pw")
    assert text.startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert all(len(line) <= 80 for line in text.splitlines())
    assert Keyring([VaultPassword("default", b"pw")]).decrypt(text, "x") == (b"hello\n", "default")
    labelled = encrypt(b"v", b"pw2", "prod")
    assert labelled.startswith("$ANSIBLE_VAULT;1.2;AES256;prod\n")
    assert parse(labelled).label == "prod"
    # The password whose vault id matches the header is tried first, and wins.
    ring = Keyring([VaultPassword("default", b"pw"), VaultPassword("prod", b"pw2")])
    assert ring.decrypt(labelled, "x") == (b"v", "prod")


def test_wrong_password_and_damaged_text_are_errors() -> None:
    text = encrypt(b"s3cret", b"right", "prod")
    with pytest.raises(VaultPasswordError, match=r"f\.yml: .*vault id 'prod'.*tried vault ids 'a'"):
        Keyring([VaultPassword("a", b"wrong")]).decrypt(text, "f.yml")
    with pytest.raises(VaultPasswordError, match="no vault password was given"):
        Keyring().decrypt(text, "f.yml")
    with pytest.raises(VaultFormatError):
        parse("$ANSIBLE_VAULT;1.1;AES256\nzz-not-hex\n")
    with pytest.raises(VaultFormatError):
        parse("$ANSIBLE_VAULT;1.1;DES\n00\n")


def test_password_sources_read_as_ansible_does(tmp_path: Path) -> None:
    plain = tmp_path / "pw"
    plain.write_bytes(b"  spaced pass \r\n\n")
    script = tmp_path / "get-pass"
    script.write_text("#!/bin/sh\nprintf 'from-script\\n'\n")
    script.chmod(0o700)
    client = tmp_path / "vault-client"
    client.write_text('#!/bin/sh\n[ "$1" = --vault-id ] && echo "pw-for-$2"\n')
    client.chmod(0o700)
    ring = build_keyring(
        [str(plain)],
        [f"prod@{script}", f"stage@{client}", "ask@prompt"],
        prompt=lambda _: "  typed  \n",
        environ={},
    )
    got = {p.label: p.password for p in ring.passwords}
    assert got == {
        "default": b"  spaced pass ",  # only newlines are stripped from a file
        "prod": b"from-script",
        "stage": b"pw-for-stage",
        "ask": b"typed",  # a prompt is stripped of all surrounding space
    }
    env_ring = build_keyring(environ={"CDLIB_VAULT_PASSWORD_FILE": str(plain)})
    assert env_ring.labels() == ["default"]
    assert "spaced" not in repr(env_ring.passwords[0])


def test_bad_password_sources(tmp_path: Path) -> None:
    with pytest.raises(VaultPasswordError, match="not found"):
        build_keyring([str(tmp_path / "none")], environ={})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(VaultPasswordError, match="empty vault password"):
        build_keyring([str(empty)], environ={})
    failing = tmp_path / "fail"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o700)
    with pytest.raises(VaultPasswordError, match="exited with status 3"):
        build_keyring([str(failing)], environ={})
    with pytest.raises(VaultPasswordError, match="bad --vault-id"):
        build_keyring(vault_ids=["@x"], environ={})


def test_encryption_needs_one_vault_id() -> None:
    ring = Keyring([VaultPassword("a", b"1"), VaultPassword("b", b"2")])
    with pytest.raises(VaultPasswordError, match="--encrypt-vault-id"):
        ring.encrypt(b"x")
    assert ring.encrypt(b"x", "b").startswith("$ANSIBLE_VAULT;1.2;AES256;b\n")


def test_inline_and_whole_file_vault_in_yaml_inventory(tmp_path: Path) -> None:
    ring = Keyring([VaultPassword("default", b"pw")])
    inline = "".join(f"        {ln}\n" for ln in encrypt(b"inline", b"pw").splitlines())
    (tmp_path / "inv.yml").write_text(
        "all:\n  hosts:\n    h:\n  vars:\n    a: !vault |\n" + inline + "    b: plain\n"
    )
    gv = tmp_path / "group_vars" / "all"
    gv.mkdir(parents=True)
    (gv / "vault.yml").write_text(encrypt(b"c: whole\nn: 3\nl: [x, true]\n", b"pw"))
    h = load_inventory([tmp_path / "inv.yml"], vault=ring).hosts["h"]
    assert h.vars["a"] == Secret("inline") and h.vars["c"] == Secret("whole")
    assert h.vars["b"] == "plain" and h.vars["n"] == 3 and h.vars["l"] == [Secret("x"), True]
    with pytest.raises(InventoryError, match=r"inv\.yml:5: vault-encrypted, but no vault"):
        load_inventory([tmp_path / "inv.yml"])


def test_secret_tags_must_be_text(tmp_path: Path) -> None:
    (tmp_path / "inv.yml").write_text("all:\n  vars:\n    a: !ssm [x]\n")
    with pytest.raises(InventoryError, match=r"inv\.yml:3: .*!ssm takes a single text value"):
        load_inventory([tmp_path / "inv.yml"])


def test_access_denied_names_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from cdlib import secret_stores

    class Denied:
        def get_parameter(self, **_: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameter"
            )

    monkeypatch.setattr(secret_stores, "_client", lambda service, region: Denied())
    secret_stores.clear_cache()
    with pytest.raises(secret_stores.SecretLookupError, match=r"'/a/b'.*AccessDeniedException"):
        Secret.from_ssm("/a/b")


def test_connection_settings_from_a_vault_file_are_used_in_clear() -> None:
    # ansible_become_password in group_vars/*/vault.yml is the most common vault use:
    # the connection must get the password, not its mask.
    from cdlib.connections.factory import connection_for
    from cdlib.inventory import Host

    host = Host(
        "db1",
        {
            "ansible_connection": "local",
            "ansible_become": Secret("yes"),
            "ansible_become_password": Secret("sudo-pw"),
            "ansible_user": Secret("deploy"),
            "ansible_host": Secret("10.0.0.5"),
            "ansible_port": Secret("2222"),
        },
    )
    assert (host.user, host.address, host.port, host.become) == ("deploy", "10.0.0.5", 2222, True)
    conn: Any = connection_for(host)
    assert conn.become is not None and conn.become.password == "sudo-pw"
