"""Secrets from SSM Parameter Store and Secrets Manager, against moto in server mode."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cdlib import Secret
from cdlib.cli.main import main as cdlib_main
from cdlib.secret_stores import SecretLookupError, clear_cache
from tests.moto_server import moto_endpoint as _moto


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server (server mode, over HTTP) on a free loopback port."""
    with _moto() as url:
        yield url


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """boto3 pointed at moto (through the environment, as a user would), with secrets."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    ssm = boto3.client("ssm")
    sm = boto3.client("secretsmanager")
    ssm.put_parameter(
        Name="/shop/db_password", Value="ssm-s3cret", Type="SecureString", Overwrite=True
    )
    with contextlib.suppress(sm.exceptions.ResourceExistsException):
        sm.create_secret(Name="shop/db", SecretString=json.dumps({"user": "u", "pw": "sm-s3cret"}))
    with contextlib.suppress(sm.exceptions.ResourceExistsException):
        sm.create_secret(Name="shop/token", SecretString="sm-token-1")
    clear_cache()
    yield {"ssm": ssm, "sm": sm}
    clear_cache()


def test_from_ssm_and_secrets_manager_resolve_masked(aws: dict[str, Any]) -> None:
    pw = Secret.from_ssm("/shop/db_password")
    assert pw.reveal() == "ssm-s3cret" and str(pw) == "********" and "s3cret" not in repr(pw)
    assert Secret.from_secrets_manager("shop/db", "pw").reveal() == "sm-s3cret"
    assert Secret.from_secrets_manager("shop/token").reveal() == "sm-token-1"


def test_values_are_fetched_once_per_run(aws: dict[str, Any]) -> None:
    assert Secret.from_ssm("/shop/db_password").reveal() == "ssm-s3cret"
    aws["ssm"].put_parameter(
        Name="/shop/db_password", Value="changed", Type="SecureString", Overwrite=True
    )
    assert Secret.from_ssm("/shop/db_password").reveal() == "ssm-s3cret"  # cached
    clear_cache()
    assert Secret.from_ssm("/shop/db_password").reveal() == "changed"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Secret.from_ssm("/shop/missing"), r"parameter '/shop/missing'.*ParameterNotFound"),
        (lambda: Secret.from_secrets_manager("shop/nope"), r"'shop/nope'.*ResourceNotFound"),
        (lambda: Secret.from_secrets_manager("shop/db", "nokey"), "no key 'nokey'"),
        (lambda: Secret.from_secrets_manager("shop/token", "k"), "not JSON"),
    ],
)
def test_missing_secret_names_it_never_a_value(
    aws: dict[str, Any], call: Any, message: str
) -> None:
    with pytest.raises(SecretLookupError, match=message) as info:
        call()
    assert "s3cret" not in str(info.value) and "sm-token" not in str(info.value)


def _inventory(tmp_path: Path, extra: str = "") -> Path:
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n"
        "  hosts:\n"
        "    localhost:\n"
        "      ansible_connection: local\n"
        "  vars:\n"
        "    db_password: !ssm /shop/db_password\n"
        "    db_pw2: !secretsmanager shop/db#pw\n"
        "    token: !secretsmanager shop/token\n" + extra
    )
    return inv


def _cdlib(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cdlib_main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_inventory_tags_resolve_and_are_masked(aws: dict[str, Any], tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    rc, out, _ = _cdlib("inventory", "-i", str(inv), "--list")
    assert rc == 0
    shown = json.loads(out)["_meta"]["hostvars"]["localhost"]
    assert shown["db_pw2"] == shown["token"] == shown["db_password"] == "********"
    rc, out, _ = _cdlib("inventory", "-i", str(inv), "--list", "--show-secrets")
    shown = json.loads(out)["_meta"]["hostvars"]["localhost"]
    assert (shown["db_password"], shown["db_pw2"], shown["token"]) == (
        "ssm-s3cret", "sm-s3cret", "sm-token-1",
    )  # fmt: skip


def test_run_uses_store_secrets_and_never_prints_them(aws: dict[str, Any], tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, Secret, tasks\n"
        "play = Play('s', hosts='all', vars={'api': Secret.from_ssm('/shop/db_password')})\n"
        f"play.task(tasks.file('{tmp_path}/out.conf', mode='0600',\n"
        "    content='{{ db_pw2 }} {{ token }} {{ api }}\\n'))\n"
    )
    rc, out, err = _cdlib("run", str(pb), "-i", str(inv), "--diff", "--format", "json")
    assert rc == 0, out + err
    for secret in ("ssm-s3cret", "sm-s3cret", "sm-token-1"):
        assert secret not in out and secret not in err
    assert (tmp_path / "out.conf").read_text() == "sm-s3cret sm-token-1 ssm-s3cret\n"


def test_missing_secret_fails_before_any_host_is_touched(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    inv = _inventory(tmp_path, "    gone: !ssm /shop/gone\n")
    pb = tmp_path / "pb.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "play = Play('s', hosts='all')\n"
        f"play.task(tasks.file('{tmp_path}/touched', content='x'))\n"
    )
    rc, _, err = _cdlib("run", str(pb), "-i", str(inv))
    assert rc == 4
    assert f"{inv}:9" in err and "'/shop/gone'" in err and "ParameterNotFound" in err
    assert not (tmp_path / "touched").exists()
    # The same from a playbook's Secret.from_ssm: a bad-input error, nothing touched.
    pb.write_text(
        "from cdlib import Play, Secret, tasks\n"
        "play = Play('s', hosts='all', vars={'x': Secret.from_ssm('/shop/gone')})\n"
        f"play.task(tasks.file('{tmp_path}/touched', content='x'))\n"
    )
    rc, _, err = _cdlib("run", str(pb), "-i", str(_inventory(tmp_path)))
    assert rc == 4 and "'/shop/gone'" in err
    assert not (tmp_path / "touched").exists()
