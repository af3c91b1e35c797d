"""EC2 inventory pieces that need no AWS: names, host vars, constructed groups."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from cdlib.inventory import InventoryError
from cdlib.inventory._data import InventoryData
from cdlib.inventory.aws_ec2 import _Constructed, host_vars, hostname, parse_aws_ec2, snake_case

INSTANCE: dict[str, Any] = {
    "InstanceId": "i-0abc",
    "PrivateIpAddress": "10.0.0.5",
    "PrivateDnsName": "ip-10-0-0-5.ec2.internal",
    "PublicDnsName": "",
    "Placement": {"AvailabilityZone": "eu-west-1b"},
    "NetworkInterfaces": [{"PrivateIpAddress": "10.0.0.5", "Ipv6Addresses": []}],
    "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "Role", "Value": "web"}],
}


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("InstanceId", "instance_id"),
        ("PrivateIpAddress", "private_ip_address"),
        ("AmiLaunchIndex", "ami_launch_index"),
        ("SriovNetSupport", "sriov_net_support"),
        ("TargetGroupARNs", "target_group_arns"),
        ("EbsOptimized", "ebs_optimized"),
        ("Ipv6Address", "ipv6_address"),
    ],
)
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake


def test_host_vars_shape() -> None:
    v = host_vars(INSTANCE)
    assert v["instance_id"] == "i-0abc"
    assert v["tags"] == {"Name": "web-1", "Role": "web"}
    assert v["placement"] == {"availability_zone": "eu-west-1b", "region": "eu-west-1"}
    assert v["network_interfaces"][0]["private_ip_address"] == "10.0.0.5"


def test_hostname_preferences() -> None:
    assert hostname(INSTANCE, [], "f") == "ip-10-0-0-5.ec2.internal"  # dns-name is empty
    assert hostname(INSTANCE, ["tag:Missing", "tag:Name"], "f") == "web-1"
    assert hostname(INSTANCE, ["tag:Role=web"], "f") == "Role_web"
    assert hostname(INSTANCE, ["tag:Role=db,Name"], "f") == "web-1"
    assert hostname(INSTANCE, ["network-interface.addresses.private-ip-address"], "f") == (
        "10.0.0.5"
    )
    pref = {"name": "private-ip-address", "prefix": "tag:Role", "separator": "/"}
    assert hostname(INSTANCE, [pref], "f") == "web/10.0.0.5"
    assert hostname(INSTANCE, ["literal-name"], "f") == "literal-name"
    with pytest.raises(InventoryError, match="needs 'name'"):
        hostname(INSTANCE, [{"prefix": "x"}], "f")


def _apply(config: dict[str, Any], variables: dict[str, Any]) -> InventoryData:
    data = InventoryData()
    data.add_host("h", "t")
    data.hosts["h"].update(variables)
    _Constructed(config, "t").apply(data, "h", dict(variables))
    return data


def test_keyed_groups_rules() -> None:
    data = _apply(
        {
            "keyed_groups": [
                {"key": "role", "prefix": "role"},
                {"key": "tags", "prefix": "tag"},
                {"key": "missing_or_empty", "prefix": "team", "default_value": "none"},
                {"key": "sgs", "prefix": "sg", "separator": "-"},
                {"key": "role", "separator": ""},
                {"key": "role"},
                {"key": "role", "prefix": "p", "parent_group": "roles"},
                {"key": "tags", "prefix": "t", "trailing_separator": False},
            ],
            "compose": {"ansible_host": "ip", "broken": "nope.nothing"},
            "groups": {"is_web": "role == 'web'", "is_db": "role == 'db'"},
        },
        {"role": "web", "tags": {"Env": "prod", "Empty": ""}, "missing_or_empty": "",
         "sgs": ["sg-1", "sg-2"], "ip": "10.0.0.1"},
    )  # fmt: skip
    groups = {g for g, grp in data.groups.items() if "h" in grp.hosts}
    assert groups == {
        "role_web", "tag_Env_prod", "tag_Empty_", "team_none", "sg_sg_1", "sg_sg_2",
        "web", "_web", "p_web", "t_Env_prod", "t_Empty", "is_web",
    }  # fmt: skip
    assert data.groups["roles"].children == ["p_web"]
    assert data.hosts["h"]["ansible_host"] == "10.0.0.1"
    assert "broken" not in data.hosts["h"]  # not strict: a failing expression is skipped


def test_strict_and_option_errors(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="compose 'x' failed for host h"):
        _apply({"strict": True, "compose": {"x": "undefined_var + 1"}}, {})
    with pytest.raises(InventoryError, match="cannot be used together"):
        _apply(
            {"keyed_groups": [{"key": "a", "default_value": "x", "trailing_separator": True}]},
            {"a": 1},
        )
    cfg = tmp_path / "x.aws_ec2.yml"
    for config, message in [
        ({"plugin": "constructed"}, "expected 'plugin: amazon.aws.aws_ec2'"),
        ({"plugin": "aws_ec2", "regionz": []}, "unknown aws_ec2 option 'regionz'"),
        ({"plugin": "aws_ec2", "compose": "x"}, "compose must be a mapping"),
    ]:
        with pytest.raises(InventoryError, match=message):
            parse_aws_ec2(InventoryData(), cfg, config)


def test_boto3_is_imported_only_for_ec2_sources(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nw1\n")
    code = (
        "import sys; from cdlib.inventory import load_inventory; "
        f"load_inventory([{str(path)!r}]); print('boto3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
