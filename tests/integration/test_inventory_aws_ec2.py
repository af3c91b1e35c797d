"""The AWS EC2 dynamic inventory against moto in server mode (real HTTP, boto3)."""

from __future__ import annotations

import contextlib
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdlib.cli.inventory import run as cdlib_inventory
from cdlib.inventory import InventoryError, load_inventory

REGION = "eu-west-1"
CREDENTIALS = "aws_access_key_id: testing\naws_secret_access_key: testing\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def instances(moto_url: str) -> dict[str, dict[str, Any]]:
    """Five instances: web-1..3 (prod; web-3 is a canary), db-1 (prod), dev-1 (dev)."""
    import boto3

    ec2 = boto3.client(
        "ec2", region_name=REGION, endpoint_url=moto_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    image = ec2.describe_images()["Images"][0]["ImageId"]
    made: dict[str, dict[str, Any]] = {}
    specs = [
        ("web-1", {"Role": "web", "Env": "prod"}, "t3.micro"),
        ("web-2", {"Role": "web", "Env": "prod"}, "m5.large"),
        ("web-3", {"Role": "web", "Env": "prod", "Canary": "true"}, "t3.micro"),
        ("db-1", {"Role": "db", "Env": "prod"}, "r5.large"),
        ("dev-1", {"Role": "web", "Env": "dev"}, "t3.micro"),
    ]
    for name, tags, itype in specs:
        tag_list = [{"Key": "Name", "Value": name}] + [
            {"Key": k, "Value": v} for k, v in tags.items()
        ]
        reply = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType=itype,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}],
        )  # fmt: skip
        made[name] = reply["Instances"][0]
    return made


def _write(tmp_path: Path, moto_url: str, body: str, name: str = "cloud.aws_ec2.yml") -> Path:
    path = tmp_path / name
    path.write_text(
        f"plugin: amazon.aws.aws_ec2\nendpoint_url: {moto_url}\nregions: [{REGION}]\n"
        + CREDENTIALS
        + body
    )
    return path


def test_filters_keyed_groups_compose_and_hostnames(
    tmp_path: Path, moto_url: str, instances: dict[str, dict[str, Any]]
) -> None:
    path = _write(
        tmp_path,
        moto_url,
        """
filters:
  tag:Env: prod
exclude_filters:
  - tag:Canary: "true"
hostnames:
  - tag:Nickname
  - tag:Name
keyed_groups:
  - key: tags.Role
    prefix: role
  - key: instance_type
    prefix: type
  - key: tags
    prefix: tag
  - key: tags.Missing
    prefix: team
    default_value: none
compose:
  ansible_host: private_ip_address
  ansible_user: "'ec2-user'"
groups:
  large: instance_type.endswith('.large')
""",
    )
    inv = load_inventory([path])
    assert sorted(inv.hosts) == ["db-1", "web-1", "web-2"]  # dev-1 filtered, web-3 excluded
    web1 = inv.hosts["web-1"]
    raw = instances["web-1"]
    assert web1.address == raw["PrivateIpAddress"]
    assert web1.user == "ec2-user"
    assert web1.vars["instance_id"] == raw["InstanceId"]
    assert web1.vars["tags"] == {"Name": "web-1", "Role": "web", "Env": "prod"}
    assert web1.vars["placement"]["region"] == REGION

    def by_id(*names: str) -> list[str]:  # hosts come in instance id order, as in Ansible
        return sorted(names, key=lambda n: instances[n]["InstanceId"])

    assert [h.name for h in inv.select("aws_ec2")] == by_id("web-1", "web-2", "db-1")
    assert [h.name for h in inv.select("role_web")] == by_id("web-1", "web-2")
    assert [h.name for h in inv.select("role_db")] == ["db-1"]
    assert [h.name for h in inv.select("large")] == by_id("web-2", "db-1")
    assert [h.name for h in inv.select("type_m5_large")] == ["web-2"]
    assert "tag_Name_web_1" in inv.groups  # '-' made safe as in Ansible
    assert [h.name for h in inv.select("team_none")] == [h for h in inv.group_hosts("aws_ec2")]
    assert inv.groups["aws_ec2"].parents == ["all"]


def test_include_filters_and_hostname_preferences(
    tmp_path: Path, moto_url: str, instances: dict[str, dict[str, Any]]
) -> None:
    path = _write(
        tmp_path,
        moto_url,
        """
include_filters:
  - tag:Role: db
  - instance-type: m5.large
hostnames:
  - name: tag:Name
    prefix: tag:Role
    separator: "-"
""",
    )
    inv = load_inventory([path])
    assert sorted(inv.hosts) == ["db-db-1", "web-web-2"]
    # No hostname preference matches -> the instance is left out; dns-name default otherwise.
    plain = _write(tmp_path, moto_url, "hostnames: [private-ip-address]\n", "p.aws_ec2.yaml")
    ips = {i["PrivateIpAddress"] for i in instances.values()}
    assert set(load_inventory([plain]).hosts) == ips
    both = _write(
        tmp_path, moto_url, "hostnames: [tag:Name, instance-id]\nallow_duplicated_hosts: true\n"
        "filters: {tag:Role: db}\n", "d.aws_ec2.yml",
    )  # fmt: skip
    db = instances["db-1"]
    assert list(load_inventory([both]).hosts) == ["db-1", db["InstanceId"]]


def test_cli_list_shape_and_error_paths(
    tmp_path: Path, moto_url: str, instances: dict[str, dict[str, Any]]
) -> None:
    path = _write(tmp_path, moto_url, "hostnames: [tag:Name]\nfilters: {tag:Env: dev}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cdlib_inventory(["-i", str(path), "--list"]) == 0
    listed = json.loads(out.getvalue())
    assert listed["all"]["children"] == ["ungrouped", "aws_ec2"]
    assert listed["aws_ec2"]["hosts"] == ["dev-1"]
    assert listed["_meta"]["hostvars"]["dev-1"]["instance_type"] == "t3.micro"

    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    bad = _write(tmp_path, dead, "", "bad.aws_ec2.yml")
    with pytest.raises(InventoryError, match=r"bad\.aws_ec2\.yml: describing EC2 instances"):
        load_inventory([bad])
    typo = _write(tmp_path, moto_url, "keyed_group: []\n", "typo.aws_ec2.yml")
    with pytest.raises(InventoryError, match=r"unknown aws_ec2 option 'keyed_group'"):
        load_inventory([typo])
