"""A vault-encrypted inventory value concatenated into a config file on a fleet host: the
host gets the real text, the console, JSON events and the diff show only ``********``."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
from pathlib import Path

import pytest

from cdlib.cli.main import main as cdlib_main
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet


def _cdlib(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cdlib_main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_vault_value_concatenated_into_a_config_file(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    pw = "vault-" + secrets.token_hex(8)
    passfile = tmp_path / "vault.pass"
    passfile.write_text("fleet-vault-pass\n")
    rc, block, err = _cdlib(
        "vault", "encrypt-string", "--vault-password-file", str(passfile), "-n", "db_password", pw
    )
    assert rc == 0, err
    inv = tmp_path / "inv"
    fleet.inventory_yaml(inv / "hosts.yml", hosts=[1])
    (inv / "group_vars").mkdir()
    (inv / "group_vars" / "web.yml").write_text("db_user: app\n" + block)
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('cfg', hosts='web')\n"
        "play.task(tasks.file('/srv/db.conf', mode='0600', name='db.conf for {{ db_user }}',\n"
        '    content=\'url = {{ "postgres://" ~ db_user ~ ":" ~ db_password ~ "@db/app" }}\'\n'
        "            '\\n'\n"
        "            'token = {{ db_password | b64encode }}\\n'\n"
        "            'user = {{ db_user }}\\n'))\n"
    )
    url = f"postgres://app:{pw}@db/app"
    b64 = base64.b64encode(pw.encode()).decode()
    args = ["run", str(pb), "-i", str(inv / "hosts.yml"), "--diff"]
    args += ["--vault-password-file", str(passfile)]

    rc, out, err = _cdlib(*args, "--format", "json")
    assert rc == 0, out + err
    on_host = fleet.ssh(1, "cat /srv/db.conf", check=True).stdout
    assert on_host == f"url = {url}\ntoken = {b64}\nuser = app\n"
    events = [json.loads(line) for line in out.splitlines()]
    (result,) = [e for e in events if e["event"] == "task_result"]
    assert result["status"] == "changed"
    assert "+url = ********" in result["diff"] and "+token = ********" in result["diff"]
    assert "+user = app" in result["diff"]  # only what came from the secret is masked
    for leak in (pw, url, b64):
        assert leak not in out and leak not in err

    fleet.ssh(1, "echo old > /srv/db.conf", check=True)
    rc, out, err = _cdlib(*args)
    assert rc == 0, out + err
    assert "+url = ********" in out and "db.conf for app" in out
    for leak in (pw, url, b64):
        assert leak not in out and leak not in err
