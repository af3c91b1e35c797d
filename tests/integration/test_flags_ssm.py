"""Flags in AWS SSM Parameter Store, against moto in server mode over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent

import cdlib
from cdlib.cli.flags import run
from cdlib.flags import AuditLog, FlagValidationError, SSMParameterStore, parse_document, ramp
from cdlib.flags.provider import SSMFlagProvider
from cdlib.tasks.flags import flag_kill, flag_ramp, flag_set

PARAM = "/shop/flags"
FLAGS = {
    "flags": {
        "checkout-v2": {
            "state": "ENABLED",
            "variants": {"new": True, "old": False},
            "defaultVariant": "old",
            "targeting": {"fractional": [{"var": "userId"}, ["new", 0], ["old", 100]]},
        }
    }
}
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on a free loopback port for this module."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        for _ in range(1000):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def ssm(moto_url: str) -> Any:
    client = boto3.client("ssm", endpoint_url=moto_url, region_name="us-east-1", **CREDS)
    client.put_parameter(Name=PARAM, Value=json.dumps(FLAGS), Type="String", Overwrite=True)
    return client


def test_store_ramps_and_refuses_bad_documents(ssm: Any, tmp_path: Path) -> None:
    store = SSMParameterStore(PARAM, client=ssm)
    log = AuditLog(tmp_path / "audit.jsonl")
    assert store.read().flag("checkout-v2")["defaultVariant"] == "old"
    ramp(store, "checkout-v2", 10, audit=log, who="ci@runner")
    value = json.loads(ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert value["flags"]["checkout-v2"]["targeting"]["fractional"][1:] == [
        ["new", 10],
        ["old", 90],
    ]
    [entry] = list(log.entries())
    assert (entry.target, entry.who, entry.action) == (f"ssm:{PARAM}", "ci@runner", "ramp 10%")

    version = ssm.get_parameter(Name=PARAM)["Parameter"]["Version"]
    bad = parse_document('{"flags": {"x": {"state": "ENABLED", "variants": {}}}}', "bad")
    with pytest.raises(FlagValidationError):
        store.write(bad)
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Version"] == version


def test_cli_on_ssm(
    ssm: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    src = [f"ssm:{PARAM}", "--endpoint-url", moto_url, "--region", "us-east-1"]
    assert run(["flags", "set", *src, "checkout-v2", "--ramp", "100"]) == 0
    assert "checkout-v2.targeting" in capsys.readouterr().out
    ctx = json.dumps({"userId": "u1"})
    assert run(["flags", "eval", *src, "checkout-v2", "--context", ctx]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["value"], out["variant"], out["reason"]) == (True, "new", "TARGETING_MATCH")
    missing = [f"ssm:{PARAM}-missing", "--endpoint-url", moto_url, "--region", "us-east-1"]
    assert run(["flags", "eval", *missing, "x"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["errorCode"] == "GENERAL" and "ParameterNotFound" in out["errorMessage"]


def test_ssm_provider_follows_changes_and_keeps_last_good(ssm: Any) -> None:
    errors: list[EventDetails] = []
    provider = SSMFlagProvider(PARAM, client=ssm, poll_interval=3600)  # refreshed by hand

    def on_error(details: EventDetails) -> None:
        errors.append(details)

    api.add_handler(ProviderEvent.PROVIDER_ERROR, on_error)
    api.set_provider_and_wait(provider, "cdlib-ssm-test")
    try:
        client = api.get_client("cdlib-ssm-test")
        ctx = EvaluationContext(attributes={"userId": "u1"})
        first = client.get_boolean_details("checkout-v2", True, ctx)
        assert (first.value, first.variant, str(first.reason)) == (False, "old", "TARGETING_MATCH")

        ramp(SSMParameterStore(PARAM, client=ssm), "checkout-v2", 100)
        assert provider.refresh() is True
        assert client.get_boolean_value("checkout-v2", False, ctx) is True

        # a bad version written around cdlib: reported, last good flags stay
        ssm.put_parameter(Name=PARAM, Value='{"flags": {"checkout-v2": {}}}', Overwrite=True)
        assert provider.refresh() is False
        # OpenFeature runs event handlers on its own executor: wait (bounded) for it
        deadline = time.monotonic() + 10
        for _ in range(500):
            if errors or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert errors and "state" in (errors[-1].message or "")
        assert provider.last_error is not None
        assert client.get_boolean_value("checkout-v2", False, ctx) is True
        missing = client.get_boolean_details("nope", False)
        assert str(missing.error_code) == "FLAG_NOT_FOUND"
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_ERROR, on_error)
        provider.shutdown()
        api.clear_providers()


def test_flag_tasks_on_ssm(
    ssm: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    log = tmp_path / "audit.jsonl"
    target = {"parameter": PARAM, "endpoint_url": moto_url, "region": "us-east-1"}

    def play_with(task: cdlib.api.Task) -> cdlib.Play:
        play = cdlib.Play("ssm flags", hosts="all")
        play.task(task)
        return play

    version = ssm.get_parameter(Name=PARAM)["Parameter"]["Version"]
    ramp30 = flag_ramp(**target, flag="checkout-v2", percent=30, audit_log=str(log))
    assert ramp30.run_once
    checked = cdlib.run(play_with(ramp30), check=True)
    assert checked.ok and len(checked.changed()) == 1
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Version"] == version

    assert len(cdlib.run(play_with(ramp30)).changed()) == 1
    assert cdlib.run(play_with(ramp30)).changed() == set()
    value = json.loads(ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    assert value["flags"]["checkout-v2"]["targeting"]["fractional"][1] == ["new", 30]
    [entry] = list(AuditLog(log).entries())
    assert (entry.target, entry.action) == (f"ssm:{PARAM}", "flag_ramp")

    bad = cdlib.run(play_with(flag_set(**target, flag="checkout-v2", default_variant="x")))
    assert not bad.ok and "no variant 'x'" in bad.results[0].msg
    with pytest.raises(cdlib.PlaybookError, match="exactly one of 'path'"):
        flag_kill(flag="checkout-v2")


def test_secure_string_keeps_type_tier_and_kms_key(moto_url: str) -> None:
    client = boto3.client("ssm", endpoint_url=moto_url, region_name="us-east-1", **CREDS)
    kms = boto3.client("kms", endpoint_url=moto_url, region_name="us-east-1", **CREDS)
    key_id = kms.create_key(Description="flags")["KeyMetadata"]["KeyId"]
    name = "/shop/secure-flags"
    client.put_parameter(
        Name=name,
        Value=json.dumps(FLAGS),
        Type="SecureString",
        KeyId=key_id,
        Tier="Advanced",
        Overwrite=True,
    )
    store = SSMParameterStore(name, client=client)
    ramp(store, "checkout-v2", 30)
    [meta] = client.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    )["Parameters"]
    assert (meta["Type"], meta["Tier"], meta["KeyId"]) == ("SecureString", "Advanced", key_id)
    assert meta["Version"] == 2
    # Without decryption the value is not the document (moto marks it with the key).
    raw = client.get_parameter(Name=name, WithDecryption=False)["Parameter"]["Value"]
    assert raw != client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    assert store.read().flag("checkout-v2")["targeting"]["fractional"][1] == ["new", 30]


def test_new_parameter_is_a_string_and_grows_to_advanced(ssm: Any) -> None:
    store = SSMParameterStore(PARAM, client=ssm)
    big = parse_document(json.dumps(FLAGS), "big").copy_data()
    big["flags"]["checkout-v2"]["metadata"] = {"note": "x" * 5000}
    store.write(store.read().with_data(big))
    [meta] = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [PARAM]}]
    )["Parameters"]
    assert (meta["Type"], meta["Tier"]) == ("String", "Advanced")
