"""AWS EC2 dynamic inventory, configured like Ansible's ``amazon.aws.aws_ec2`` plugin.

A file whose name ends in ``aws_ec2.yml`` or ``aws_ec2.yaml``::

    plugin: amazon.aws.aws_ec2
    regions: [eu-west-1]
    filters: {tag:Environment: prod}
    exclude_filters: [{tag:Canary: "true"}]
    hostnames: [tag:Name, private-ip-address]
    keyed_groups:
      - {key: tags.Role, prefix: role}
      - {key: placement.availability_zone, prefix: az}
    compose:
      ansible_host: private_ip_address
    groups:
      big: instance_type.startswith('m5')

Every instance becomes a host in group ``aws_ec2`` whose vars are the
``describe-instances`` fields in snake_case (``instance_id``, ``private_ip_address``,
``placement.availability_zone`` ...), ``tags`` as a name -> value mapping and
``placement.region``. boto3 is imported only when such a file is read. The endpoint can
be set with ``endpoint_url`` (or ``AWS_ENDPOINT_URL``), e.g. for a local moto server.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cdlib.inventory._data import InventoryData, safe_group_name
from cdlib.inventory.model import InventoryError

_PLUGIN_NAMES = ("aws_ec2", "amazon.aws.aws_ec2")
_OPTIONS = {
    "plugin", "regions", "filters", "include_filters", "exclude_filters", "hostnames",
    "keyed_groups", "compose", "groups", "strict", "leading_separator", "endpoint_url",
    "aws_profile", "profile", "boto_profile", "aws_access_key", "aws_access_key_id",
    "access_key", "aws_secret_key", "aws_secret_access_key", "secret_key",
    "aws_security_token", "session_token", "security_token", "hostvars_prefix",
    "hostvars_suffix", "use_contrib_script_compatible_ec2_tag_keys",
    "allow_duplicated_hosts",
}  # fmt: skip
#: Options of the Ansible plugin that only tune caching or API use; accepted, no effect.
_IGNORED_OPTIONS = {
    "cache", "cache_plugin", "cache_timeout", "cache_connection", "cache_prefix",
    "strict_permissions", "include_extra_api_calls", "use_contrib_script_compatible_sanitization",
}  # fmt: skip
_DEFAULT_STATES = ["running", "pending", "stopping", "stopped"]
_DEFAULT_HOSTNAMES = ["dns-name", "private-dns-name"]

#: describe-instances filter names usable in ``hostnames`` -> path in the instance data.
_FILTER_PATHS: dict[str, tuple[str, ...]] = {
    "architecture": ("Architecture",),
    "availability-zone": ("Placement", "AvailabilityZone"),
    "dns-name": ("PublicDnsName",),
    "hypervisor": ("Hypervisor",),
    "image-id": ("ImageId",),
    "instance-id": ("InstanceId",),
    "instance-lifecycle": ("InstanceLifecycle",),
    "instance-state-name": ("State", "Name"),
    "instance-type": ("InstanceType",),
    "ip-address": ("PublicIpAddress",),
    "ipv6-address": ("Ipv6Address",),
    "kernel-id": ("KernelId",),
    "key-name": ("KeyName",),
    "launch-index": ("AmiLaunchIndex",),
    "network-interface.addresses.private-ip-address": ("NetworkInterfaces", "PrivateIpAddress"),
    "network-interface.private-dns-name": ("NetworkInterfaces", "PrivateDnsName"),
    "owner-id": ("OwnerId",),
    "platform": ("Platform",),
    "private-dns-name": ("PrivateDnsName",),
    "private-ip-address": ("PrivateIpAddress",),
    "reservation-id": ("ReservationId",),
    "subnet-id": ("SubnetId",),
    "tenancy": ("Placement", "Tenancy"),
    "vpc-id": ("VpcId",),
}

_PLURAL_ACRONYM = re.compile(r"[A-Z]{3,}s$")
_BEFORE_WORD = re.compile(r"(.)([A-Z][a-z]+)")
_BEFORE_CAPS = re.compile(r"([a-z0-9])([A-Z]+)")


def snake_case(name: str) -> str:
    """``PrivateIpAddress`` -> ``private_ip_address`` (AWS field names to Ansible's)."""
    # 'TargetGroupARNs' must give target_group_arns, not target_group_ar_ns.
    text = _PLURAL_ACRONYM.sub(lambda m: "_" + m.group(0).lower(), name)
    if text.startswith("_") and not name.startswith("_"):
        text = text[1:]
    text = _BEFORE_WORD.sub(r"\1_\2", text)
    return _BEFORE_CAPS.sub(r"\1_\2", text).lower()


def _snake_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            snake_case(str(k)): (v if k == "Tags" else _snake_data(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_snake_data(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def _tags(raw: Any) -> dict[str, Any]:
    return {t["Key"]: t.get("Value", "") for t in raw or [] if isinstance(t, Mapping)}


def host_vars(instance: Mapping[str, Any]) -> dict[str, Any]:
    """The variables Ansible's aws_ec2 plugin gives an instance."""
    out: dict[str, Any] = _snake_data(instance)
    out["tags"] = _tags(instance.get("Tags"))
    placement = out.setdefault("placement", {})
    zone = placement.get("availability_zone") or ""
    placement["region"] = zone[:-1]
    return out


def _filter_list(filters: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(filters, Mapping):
        raise InventoryError(f"{where}: filters must be a mapping of filter name to value(s)")
    out = []
    for name, value in filters.items():
        values = value if isinstance(value, list) else [value]
        out.append({"Name": str(name), "Values": [_filter_text(v) for v in values]})
    return out


def _filter_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if isinstance(value, list):
            found = [v for v in (_walk(item, (key,)) for item in value) if v]
            value = found[0] if len(found) == 1 else found
        elif isinstance(value, Mapping):
            value = value.get(key)
        else:
            return None
    return value


def _tag_hostname(preference: str, tags: Mapping[str, Any]) -> str | None:
    for item in preference.split(":", 1)[1].split(","):
        if "=" in item:
            name, wanted = item.split("=", 1)
            if tags.get(name) == wanted:
                return f"{name}_{wanted}"
        elif tags.get(item):
            return str(tags[item])
    return None


def hostname(instance: Mapping[str, Any], preferences: list[Any], where: str) -> str | None:
    """The first usable name for ``instance`` from the ``hostnames`` preference list."""
    for pref in preferences or _DEFAULT_HOSTNAMES:
        name: Any
        if isinstance(pref, Mapping):
            if "name" not in pref:
                raise InventoryError(f"{where}: a hostnames entry that is a mapping needs 'name'")
            name = hostname(instance, [pref["name"]], where)
            if name and "prefix" in pref:
                prefix = hostname(instance, [pref["prefix"]], where)
                if prefix:
                    name = f"{prefix}{pref.get('separator', '_')}{name}"
        elif not isinstance(pref, str):
            raise InventoryError(f"{where}: hostnames entries must be text or mappings")
        elif pref.startswith("tag:"):
            name = _tag_hostname(pref, _tags(instance.get("Tags")))
        elif pref in _FILTER_PATHS:
            name = _walk(instance, _FILTER_PATHS[pref])
            if isinstance(name, list):
                name = name[0] if name else None
        else:
            name = pref  # an unknown entry is used as a literal name, as in Ansible
        if name:
            text = str(name)
            return safe_group_name(text) if ":" in text else text
    return None


def _expressions() -> Callable[[str], Callable[..., Any]]:
    from cdlib.jinja_sandbox import sandboxed_environment

    env = sandboxed_environment()
    env.filters["regex_replace"] = lambda s, pattern, repl="": re.sub(pattern, repl, str(s))
    return env.compile_expression


class _Constructed:
    """``compose``, ``groups`` and ``keyed_groups`` for one host, as Ansible applies them."""

    def __init__(self, config: Mapping[str, Any], where: str) -> None:
        self.where = where
        self.strict = bool(config.get("strict", False))
        self.leading_separator = config.get("leading_separator", True) is not False
        self.compose = _mapping_option(config, "compose", where)
        self.groups = _mapping_option(config, "groups", where)
        self.keyed = config.get("keyed_groups") or []
        if not isinstance(self.keyed, list):
            raise InventoryError(f"{where}: keyed_groups must be a list")
        self.compile = _expressions()

    def evaluate(self, expression: Any, variables: Mapping[str, Any]) -> Any:
        if not isinstance(expression, str):
            return expression
        return self.compile(expression)(**variables)

    def apply(self, data: InventoryData, host: str, variables: dict[str, Any]) -> None:
        for var, expression in self.compose.items():
            try:
                value = self.evaluate(expression, variables)
            except Exception as exc:
                if self.strict:
                    raise InventoryError(
                        f"{self.where}: compose {var!r} failed for host {host}: {exc}"
                    ) from None
                continue
            data.set_host_var(host, str(var), value)
        variables = {**variables, **data.hosts[host]}
        for group, condition in self.groups.items():
            try:
                matched = bool(self.evaluate(condition, variables))
            except Exception as exc:
                if self.strict:
                    raise InventoryError(
                        f"{self.where}: groups {group!r} failed for host {host}: {exc}"
                    ) from None
                continue
            if matched:
                name = data.add_group(safe_group_name(str(group)), self.where)
                data.add_host(host, self.where, group=name)
        for entry in self.keyed:
            self._keyed(data, host, entry, variables)

    def _keyed(self, data: InventoryData, host: str, entry: Any, variables: Any) -> None:
        if not isinstance(entry, Mapping):
            raise InventoryError(f"{self.where}: each keyed_groups entry must be a mapping")
        default = entry.get("default_value")
        trailing = entry.get("trailing_separator")
        if default is not None and trailing is not None:
            raise InventoryError(
                f"{self.where}: keyed_groups: default_value and trailing_separator "
                "cannot be used together"
            )
        try:
            key = self.evaluate(entry.get("key"), variables)
        except Exception as exc:
            if self.strict:
                raise InventoryError(
                    f"{self.where}: keyed_groups key {entry.get('key')!r} failed for {host}: {exc}"
                ) from None
            return
        use_default = key in (None, "") and default is not None
        if not key and not use_default:
            if self.strict and key not in ([], {}):
                raise InventoryError(
                    f"{self.where}: keyed_groups key {entry.get('key')!r} is empty for {host}"
                )
            return
        prefix = str(entry.get("prefix", ""))
        sep = str(entry.get("separator", "_"))
        names: list[str] = []
        if use_default:
            names.append(str(default))
        elif isinstance(key, str | int | float):
            names.append(str(key))
        elif isinstance(key, list):
            names.extend(str(default) if v in (None, "") and default else str(v) for v in key)
        elif isinstance(key, Mapping):
            for k, v in key.items():
                if v in (None, "") and default is not None:
                    names.append(f"{k}{sep}{default}")
                elif v in (None, "") and trailing is False:
                    names.append(str(k))
                else:
                    names.append(f"{k}{sep}{v}")
        else:
            raise InventoryError(
                f"{self.where}: keyed_groups key {entry.get('key')!r} gave "
                f"{type(key).__name__}; expected text, a list or a mapping"
            )
        if prefix == "" and not self.leading_separator:
            sep = ""
        parent = entry.get("parent_group")
        for bare in names:
            group = data.add_group(safe_group_name(f"{prefix}{sep}{bare}"), self.where)
            data.add_host(host, self.where, group=group)
            if parent:
                parent_name = data.add_group(safe_group_name(str(parent)), self.where)
                data.add_child(parent_name, group, self.where)


def _mapping_option(config: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, Mapping):
        raise InventoryError(f"{where}: {name} must be a mapping")
    return value


def _option(config: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if config.get(name):
            return config[name]
    return None


def describe_instances(config: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The instances the config selects (filters, include/exclude filters), by id."""
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.parsers

    try:
        session = boto3.session.Session(
            profile_name=_option(config, "aws_profile", "profile", "boto_profile"),
            aws_access_key_id=_option(config, "aws_access_key", "aws_access_key_id", "access_key"),
            aws_secret_access_key=_option(
                config, "aws_secret_key", "aws_secret_access_key", "secret_key"
            ),
            aws_session_token=_option(
                config, "aws_security_token", "session_token", "security_token"
            ),
        )
    except botocore.exceptions.BotoCoreError as exc:
        raise InventoryError(f"{where}: cannot set up AWS credentials: {exc}") from None
    endpoint = config.get("endpoint_url") or None
    regions = config.get("regions") or []
    if not isinstance(regions, list):
        raise InventoryError(f"{where}: regions must be a list")

    # Bounded: a dead endpoint fails in seconds, not after botocore's long default retries.
    settings = botocore.config.Config(
        connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
    )

    def client(region: str) -> Any:
        return session.client("ec2", region_name=region, endpoint_url=endpoint, config=settings)

    include = config.get("include_filters") or []
    exclude = config.get("exclude_filters") or []
    if not isinstance(include, list) or not isinstance(exclude, list):
        raise InventoryError(f"{where}: include_filters and exclude_filters must be lists")
    if config.get("filters"):
        include = [config["filters"], *include]
    include = include or [{}]

    try:
        if not regions:
            home = session.region_name or "us-east-1"
            regions = [r["RegionName"] for r in client(home).describe_regions()["Regions"]]

        def query(filters: Any) -> list[dict[str, Any]]:
            wanted = _filter_list(filters, where)
            if not any(f["Name"] == "instance-state-name" for f in wanted):
                wanted.append({"Name": "instance-state-name", "Values": _DEFAULT_STATES})
            found: list[dict[str, Any]] = []
            for region in regions:
                pages = client(str(region)).get_paginator("describe_instances")
                for page in pages.paginate(Filters=wanted):
                    for reservation in page.get("Reservations", []):
                        extra = {
                            "OwnerId": reservation.get("OwnerId"),
                            "RequesterId": reservation.get("RequesterId", ""),
                            "ReservationId": reservation.get("ReservationId"),
                        }
                        found.extend({**i, **extra} for i in reservation.get("Instances", []))
            return found

        skip = {i["InstanceId"] for filters in exclude for i in query(filters)}
        chosen: dict[str, dict[str, Any]] = {}
        for filters in include:
            for instance in query(filters):
                if instance["InstanceId"] not in skip:
                    chosen.setdefault(instance["InstanceId"], instance)
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        botocore.parsers.ResponseParserError,
    ) as exc:
        raise InventoryError(f"{where}: describing EC2 instances failed: {exc}") from None
    return [chosen[k] for k in sorted(chosen)]


def parse_aws_ec2(data: InventoryData, path: Path, config: Any) -> None:
    """Add the EC2 instances selected by the aws_ec2 ``config`` (read from ``path``)."""
    where = str(path)
    if not isinstance(config, Mapping):
        raise InventoryError(f"{where}: an aws_ec2 inventory must be a mapping of options")
    if config.get("plugin") not in _PLUGIN_NAMES:
        raise InventoryError(
            f"{where}: expected 'plugin: amazon.aws.aws_ec2' (or aws_ec2), "
            f"got {config.get('plugin')!r}"
        )
    unknown = sorted(set(map(str, config)) - _OPTIONS - _IGNORED_OPTIONS)
    if unknown:
        raise InventoryError(
            f"{where}: unknown aws_ec2 option {unknown[0]!r}; "
            f"supported: {', '.join(sorted(_OPTIONS))}"
        )
    preferences = config.get("hostnames") or []
    if not isinstance(preferences, list):
        raise InventoryError(f"{where}: hostnames must be a list")
    constructed = _Constructed(config, where)
    prefix = str(config.get("hostvars_prefix") or "")
    suffix = str(config.get("hostvars_suffix") or "")
    legacy_tags = bool(config.get("use_contrib_script_compatible_ec2_tag_keys"))
    data.add_group("aws_ec2", where)
    every_name = bool(config.get("allow_duplicated_hosts"))
    for instance in describe_instances(config, where):
        if every_name:  # one host per matching hostnames entry, all with the same vars
            found = (hostname(instance, [p], where) for p in preferences or _DEFAULT_HOSTNAMES)
            names = list(dict.fromkeys(n for n in found if n))
        else:
            first = hostname(instance, preferences, where)
            names = [first] if first else []
        variables = host_vars(instance)
        if legacy_tags:
            variables.update({f"ec2_tag_{k}": v for k, v in variables["tags"].items()})
        if prefix or suffix:
            variables = {f"{prefix}{k}{suffix}": v for k, v in variables.items()}
        for name in names:
            data.add_host(name, where, group="aws_ec2")
            for key, value in variables.items():
                data.set_host_var(name, key, value)
            constructed.apply(data, name, {**variables, **data.hosts[name]})
    data.add_child("all", "aws_ec2", where)
