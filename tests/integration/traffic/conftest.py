"""Fixtures for the traffic tests: sample-app processes, a real HAProxy."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cdlib.traffic.aws_api import cloudwatch_client, elbv2_client
from cdlib.traffic.local import LocalHAProxy
from tests.integration.traffic.traffic_helpers import (
    AWS,
    App,
    Aws,
    HAProxyEnv,
    SampleApp,
    free_port,
    sample_apps,
)
from tests.moto_server import moto_endpoint


@pytest.fixture
def apps() -> Iterator[dict[str, list[SampleApp]]]:
    """Sample-app processes, two per group: blue serves 1.0.0, green serves 2.0.0."""
    with sample_apps({"blue": ("1.0.0", 2), "green": ("2.0.0", 2)}) as groups:
        yield groups


@pytest.fixture
def thread_app() -> Iterator[App]:
    """An in-process HTTP app whose /slow/<seconds> holds a request open."""
    app = App("1.0.0").start()
    yield app
    app.stop()


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HAProxyEnv]:
    """HAProxy on a free loopback port with no servers yet, and a router for it."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (scripts/test installs it on CI)")
    port = free_port()
    local = LocalHAProxy(
        tmp_path, bind=f"127.0.0.1:{port}", check_inter_ms=200, check_rise=1, check_fall=3
    )
    router = local.start()
    try:
        yield HAProxyEnv(local.process, router, local.site, local.config_path, port)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    """A moto server (server mode, over HTTP) on a free loopback port."""
    with moto_endpoint() as url:
        yield url


@pytest.fixture(scope="session")
def aws_clients(endpoint: str) -> tuple[Any, Any, Any, Counter[str]]:
    """ELBv2, EC2 and CloudWatch clients for moto (built once: loading models is slow)."""
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    ec2 = session.client("ec2", endpoint_url=endpoint)
    client = elbv2_client(endpoint_url=endpoint, **AWS)
    writes: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        if not model.name.startswith(("Describe", "Get")):
            writes[model.name] += 1

    client.meta.events.register("before-call.elastic-load-balancing-v2", count)
    return client, ec2, cloudwatch_client(endpoint_url=endpoint, **AWS), writes


@pytest.fixture
def aws(aws_clients: tuple[Any, Any, Any, Counter[str]], monkeypatch: pytest.MonkeyPatch) -> Aws:
    """A fresh VPC with two subnets on moto, the clients, and a zeroed write counter."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client, ec2, cloudwatch, writes = aws_clients
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    writes.clear()
    return Aws(client, ec2, cloudwatch, vpc, (subnets[0], subnets[1]), writes)
