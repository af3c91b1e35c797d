"""A run with vault-encrypted inventory values: the host gets the value, output never does."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

from cdlib.cli.main import main as cdlib_main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "inventory" / "vault"
SECRETS = ("s3cret-db", "inline-secret", "dev only value", "k-9")


def _inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inv"
    shutil.copytree(FIXTURE, inv)
    # Both hosts run locally, each writing under tmp_path.
    (inv / "host_vars" / "web2.yml").write_text("ansible_connection: local\n")
    with (inv / "host_vars" / "web1.yml").open("a") as fh:
        fh.write("ansible_connection: local\n")
    return inv


def _run(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    inv = _inventory(tmp_path)
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('vault', hosts='web')\n"
        f"play.task(tasks.file('{tmp_path}/{{{{ inventory_hostname }}}}.conf', mode='0600',\n"
        "    content='db={{ db_password }} smtp={{ smtp_pass }} key={{ nested.key }}\\n'))\n"
        f"play.task(tasks.file('{tmp_path}/dev.conf', mode='0600', content='{{{{ dev_key }}}}',\n"
        "    when='dev_key is defined'))\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cdlib_main(
            ["run", str(pb), "-i", str(inv / "hosts.yml"), "--diff", *extra,
             "--vault-password-file", str(FIXTURE / "default.pass"),
             "--vault-id", f"dev@{FIXTURE / 'dev-pass.sh'}"]
        )  # fmt: skip
    return rc, out.getvalue(), err.getvalue()


def test_vault_values_reach_the_host_but_not_json_events_or_diff(tmp_path: Path) -> None:
    rc, out, err = _run(tmp_path, "--format", "json")
    assert rc == 0, out + err
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e.get("diff") for e in events), "the run showed no diff to check"
    for secret in SECRETS:
        assert secret not in out and secret not in err
    assert "********" in out
    written = (tmp_path / "web1.conf").read_text()
    assert written == "db=s3cret-db smtp=inline-secret key=k-9\n"


def test_vault_values_masked_in_text_diff(tmp_path: Path) -> None:
    rc, out, err = _run(tmp_path)
    assert rc == 0, out + err
    assert "db=********" in out
    for secret in SECRETS:
        assert secret not in out and secret not in err


def test_wrong_vault_password_stops_the_run_before_any_host(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('vault', hosts='web')\n"
        f"play.task(tasks.file('{tmp_path}/touched', content='x'))\n"
    )
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not it\n")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = cdlib_main(
            ["run", str(pb), "-i", str(inv / "hosts.yml"), "--vault-password-file", str(wrong)]
        )
    assert rc == 4
    assert "hosts.yml:8: cannot decrypt: wrong vault password (tried vault ids 'default')" in (
        err.getvalue()
    )
    assert not (tmp_path / "touched").exists()
