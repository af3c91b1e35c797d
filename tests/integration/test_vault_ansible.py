"""Ansible Vault against the real thing: ansible-vault and ansible-inventory as oracles.

What ansible-vault encrypts cdlib reads; what ``cdlib vault`` encrypts ansible-vault reads;
an inventory with vault-encrypted group_vars (whole files and inline ``!vault`` values,
with two vault ids) resolves as ``ansible-inventory --list`` resolves it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdlib.cli.inventory import run as cdlib_inventory
from cdlib.cli.main import main as cdlib_main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "inventory" / "vault"
DEFAULT_PASS = FIXTURE / "default.pass"
DEV_SCRIPT = FIXTURE / "dev-pass.sh"


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


ANSIBLE_VAULT = _tool("ansible-vault")
ANSIBLE_INVENTORY = _tool("ansible-inventory")
pytestmark = pytest.mark.skipif(
    ANSIBLE_VAULT is None or importlib.util.find_spec("ansible") is None,
    reason="ansible-core is not installed (it is in the 'test' extra)",
)


def _env(tmp: Path) -> dict[str, str]:
    cfg = tmp / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_HOME": str(tmp / "home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }


def _ansible(tmp: Path, tool: str | None, *args: str, stdin: str | None = None) -> str:
    assert tool is not None
    proc = subprocess.run(
        [tool, *args], input=stdin, capture_output=True, text=True, env=_env(tmp),
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _cdlib(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cdlib_main(list(argv))
    return rc, out.getvalue()


def _open_ansible_vault_values(value: Any) -> Any:
    """ansible-inventory 2.19 prints inline vault values as {'__ansible_vault': text};
    open them with ansible's own VaultLib (the oracle), so both sides show plaintext."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    lib = VaultLib(
        [
            ("default", VaultSecret(DEFAULT_PASS.read_bytes().strip())),
            ("dev", VaultSecret(b"dev battery staple")),
        ]
    )
    if isinstance(value, dict):
        if set(value) == {"__ansible_vault"}:
            return lib.decrypt(value["__ansible_vault"]).decode()
        return {k: _open_ansible_vault_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_open_ansible_vault_values(v) for v in value]
    return value


VAULT_ARGS = ["--vault-password-file", str(DEFAULT_PASS), "--vault-id", f"dev@{DEV_SCRIPT}"]


def test_inventory_with_vault_matches_ansible_inventory(tmp_path: Path) -> None:
    inv = str(FIXTURE / "hosts.yml")
    expected = json.loads(_ansible(tmp_path, ANSIBLE_INVENTORY, "-i", inv, *VAULT_ARGS, "--list"))
    expected["_meta"].pop("profile", None)
    expected = _open_ansible_vault_values(expected)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cdlib_inventory(["-i", inv, *VAULT_ARGS, "--show-secrets", "--list"]) == 0
    got = json.loads(out.getvalue())
    assert got == expected
    # The fixture really holds each kind: whole-file, inline default id, inline 'dev' id.
    web1 = got["_meta"]["hostvars"]["web1"]
    assert web1["db_password"] == "s3cret-db" and web1["nested"]["key"] == "k-9"
    assert web1["smtp_pass"] == "inline-secret" and web1["dev_key"] == "dev only value"


def test_inventory_masks_vault_values_unless_asked(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cdlib_inventory(["-i", str(FIXTURE / "hosts.yml"), *VAULT_ARGS, "--list"]) == 0
    text = out.getvalue()
    for secret in ("s3cret-db", "inline-secret", "dev only value", "tok-123", "k-9"):
        assert secret not in text
    web1 = json.loads(text)["_meta"]["hostvars"]["web1"]
    assert web1["dev_key"] == "********" and web1["plain_var"] == "visible"
    assert web1["db_port"] == 5432  # a number in a vault file keeps its type


def test_wrong_password_names_file_and_vault_id_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("nope\n")
    rc = cdlib_inventory(
        ["-i", str(FIXTURE / "hosts.yml"), "--vault-password-file", str(wrong), "--list"]
    )
    err = capsys.readouterr().err
    assert rc == 4
    assert "hosts.yml:8" in err and "wrong vault password" in err and "'default'" in err
    assert "nope" not in err


def test_cdlib_encrypts_what_ansible_vault_decrypts(tmp_path: Path) -> None:
    plain = "db_password: from-cdlib\nlist: [1, 2]\nunicode: é✓\n"
    target = tmp_path / "vault.yml"
    target.write_text(plain)
    target.chmod(0o640)
    rc, _ = _cdlib("vault", "encrypt", str(target), "--vault-password-file", str(DEFAULT_PASS))
    assert rc == 0
    assert target.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    view = _ansible(tmp_path, ANSIBLE_VAULT, "view", "--vault-password-file", str(DEFAULT_PASS),
                    str(target))  # fmt: skip
    assert view == plain
    # With a vault id: format 1.2 and the label in the header, read by ansible-vault.
    labelled = tmp_path / "dev.yml"
    labelled.write_text(plain)
    assert _cdlib("vault", "encrypt", str(labelled), "--vault-id", f"dev@{DEV_SCRIPT}")[0] == 0
    assert labelled.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;dev\n")
    view = _ansible(tmp_path, ANSIBLE_VAULT, "view", "--vault-id", f"dev@{DEV_SCRIPT}",
                    str(labelled))  # fmt: skip
    assert view == plain


def test_cdlib_encrypt_string_is_read_by_ansible(tmp_path: Path) -> None:
    rc, block = _cdlib(
        "vault", "encrypt-string", "p@ss w0rd", "--name", "db_password",
        "--vault-id", f"dev@{DEV_SCRIPT}",
    )  # fmt: skip
    assert rc == 0 and block.startswith("db_password: !vault |\n          $ANSIBLE_VAULT;1.2;")
    (tmp_path / "inv.yml").write_text(
        "all:\n  hosts:\n    h1:\n  vars:\n" + "".join(f"    {ln}\n" for ln in block.splitlines())
    )
    listed = json.loads(
        _ansible(tmp_path, ANSIBLE_INVENTORY, "-i", str(tmp_path / "inv.yml"), "--vault-id",
                 f"dev@{DEV_SCRIPT}", "--list")
    )  # fmt: skip
    assert _open_ansible_vault_values(listed)["_meta"]["hostvars"]["h1"] == {
        "db_password": "p@ss w0rd"
    }


def test_ansible_vault_files_decrypt_view_rekey_with_cdlib(tmp_path: Path) -> None:
    src = tmp_path / "secret.txt"
    src.write_text("top: secret\n")
    _ansible(tmp_path, ANSIBLE_VAULT, "encrypt", "--vault-id", f"dev@{DEV_SCRIPT}", str(src))
    assert _cdlib("vault", "view", str(src), "--vault-id", f"dev@{DEV_SCRIPT}") == (
        0,
        "top: secret\n",
    )
    # rekey to the default password; ansible-vault opens it with the new one only.
    rc, _ = _cdlib("vault", "rekey", str(src), "--vault-id", f"dev@{DEV_SCRIPT}",
                   "--new-vault-password-file", str(DEFAULT_PASS))  # fmt: skip
    assert rc == 0
    view = _ansible(tmp_path, ANSIBLE_VAULT, "view", "--vault-password-file", str(DEFAULT_PASS),
                    str(src))  # fmt: skip
    assert view == "top: secret\n"
    out = tmp_path / "clear.txt"
    rc, _ = _cdlib("vault", "decrypt", str(src), "--output", str(out),
                   "--vault-password-file", str(DEFAULT_PASS))  # fmt: skip
    assert rc == 0 and out.read_text() == "top: secret\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_wrong_password_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a.yml"
    src.write_text("x: 1\n")
    _ansible(tmp_path, ANSIBLE_VAULT, "encrypt", "--vault-password-file", str(DEFAULT_PASS),
             str(src))  # fmt: skip
    before = src.read_bytes()
    wrong = tmp_path / "wrong"
    wrong.write_text("bad\n")
    for action in ("decrypt", "rekey", "edit", "view"):
        extra = ["--new-vault-password-file", str(wrong)] if action == "rekey" else []
        rc, out = _cdlib("vault", action, str(src), "--vault-password-file", str(wrong), *extra)
        err = capsys.readouterr().err
        assert rc == 4, action
        assert f"{src}: cannot decrypt" in err and "'default'" in err, err
        assert src.read_bytes() == before and out == ""
    assert not [p.name for p in tmp_path.iterdir() if ".cdlib-" in p.name]


def test_edit_uses_a_private_temp_file_and_ansible_reads_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "vault.yml"
    src.write_text("a: 1\n")
    _ansible(tmp_path, ANSIBLE_VAULT, "encrypt", "--vault-id", f"dev@{DEV_SCRIPT}", str(src))
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.sh"
    # Records the temp file's and its directory's modes, then appends a line.
    editor.write_text(
        f'#!/bin/sh\nstat -c %a "$1" "$(dirname "$1")" > {seen}\nprintf "b: 2\\n" >> "$1"\n'
    )
    editor.chmod(0o700)
    monkeypatch.setenv("EDITOR", str(editor))
    assert _cdlib("vault", "edit", str(src), "--vault-id", f"dev@{DEV_SCRIPT}")[0] == 0
    assert seen.read_text().split() == ["600", "700"]
    text = src.read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;dev\n") and "b: 2" not in text
    view = _ansible(tmp_path, ANSIBLE_VAULT, "view", "--vault-id", f"dev@{DEV_SCRIPT}", str(src))
    assert view == "a: 1\nb: 2\n"
    # A failing editor saves nothing.
    editor.write_text('#!/bin/sh\necho x >> "$1"\nexit 1\n')
    before = src.read_bytes()
    assert _cdlib("vault", "edit", str(src), "--vault-id", f"dev@{DEV_SCRIPT}")[0] == 4
    assert src.read_bytes() == before


def test_edit_reencrypts_with_the_password_that_opened_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two passwords under the same vault id: edit keeps the one that worked."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("one\n")
    second.write_text("two\n")
    src = tmp_path / "vault.yml"
    src.write_text("a: 1\n")
    assert _cdlib("vault", "encrypt", str(src), "--vault-password-file", str(second))[0] == 0
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "b: 2\\n" >> "$1"\n')
    editor.chmod(0o700)
    monkeypatch.setenv("EDITOR", str(editor))
    both = ["--vault-password-file", str(first), "--vault-password-file", str(second)]
    assert _cdlib("vault", "edit", str(src), *both)[0] == 0
    rc, out = _cdlib("vault", "view", str(src), "--vault-password-file", str(second))
    assert rc == 0 and out == "a: 1\nb: 2\n"
