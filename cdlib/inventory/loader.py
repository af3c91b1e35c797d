"""Read inventory sources and merge variables the way Ansible does.

Sources are files, directories of files, or comma-separated host lists (``"a,b,"``).
The file type comes from its name:

* ``*aws_ec2.yml`` / ``*aws_ec2.yaml`` - AWS EC2 dynamic inventory (see ``aws_ec2``)
* ``.yml`` / ``.yaml`` / ``.json`` - YAML/JSON inventory
* ``.ini`` - INI inventory
* ``.py`` - Python inventory (see ``python_source``)
* no extension - YAML if it reads as a mapping of groups, else INI (as Ansible tries both)

Variables of a host, lowest to highest precedence (Ansible's defaults):
``all`` group vars from the inventory, other groups' vars from the inventory (sorted by
depth, ``ansible_group_priority``, name), ``group_vars/all``, ``group_vars/<group>`` (same
order; for each source in turn), the host's vars from the inventory, ``host_vars/<host>``,
extra vars. With a playbook directory, its ``group_vars/all``, ``group_vars/<group>`` and
``host_vars/<host>`` each come just after the inventory's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cdlib.inventory._address import parse_address
from cdlib.inventory._data import InventoryData
from cdlib.inventory.ini import parse_ini
from cdlib.inventory.model import Group, Host, Inventory, InventoryError
from cdlib.inventory.vars_files import VarsFiles
from cdlib.inventory.yaml_source import (
    is_list_format,
    load_json,
    load_yaml,
    parse_list_format,
    parse_structured,
)
from cdlib.vault.keyring import Keyring

#: What each accepted file type looks like, for error messages.
ACCEPTED_FORMATS = (
    "INI (.ini or no extension), YAML (.yml, .yaml), JSON (.json), Python (.py), "
    "AWS EC2 (*aws_ec2.yml, *aws_ec2.yaml)"
)
#: Names skipped inside an inventory directory (as Ansible skips them).
_SKIPPED_DIRS = ("group_vars", "host_vars", "vars_plugins")
_SKIPPED_SUFFIXES = (
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
    ".retry",
)  # fmt: skip
_EC2_SUFFIXES = ("aws_ec2.yml", "aws_ec2.yaml")
_EC2_PLUGIN_NAMES = ("aws_ec2", "amazon.aws.aws_ec2")


def file_kind(path: Path) -> str:
    """The inventory type of ``path``: aws_ec2, yaml, json, ini, python or auto."""
    if path.name.endswith(_EC2_SUFFIXES):
        return "aws_ec2"
    suffix = path.suffix.lower()
    kinds = {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".ini": "ini", ".py": "python"}
    if suffix in kinds:
        return kinds[suffix]
    if not suffix:
        return "auto"
    raise InventoryError(
        f"{path}: unknown inventory file type {suffix!r}; accepted: {ACCEPTED_FORMATS}"
    )


class _Loader:
    def __init__(self, extra_vars: Mapping[str, Any], keyring: Keyring | None) -> None:
        self.data = InventoryData()
        self.keyring = keyring
        self.extra_vars = dict(extra_vars)
        self.var_dirs: list[Path] = []

    def source(self, src: str | Path) -> None:
        text = str(src)
        path = Path(os.path.expanduser(text))
        if isinstance(src, str) and "," in text and not path.exists():
            self.host_list(text)
            return
        if not path.exists():
            raise InventoryError(f"{path}: inventory source not found")
        self.var_dirs.append(path if path.is_dir() else path.parent)
        if path.is_dir():
            self.directory(path)
        else:
            self.file(path)

    def host_list(self, text: str) -> None:
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            parsed = parse_address(item)
            name, port = parsed if parsed and "[" not in parsed[0] else (item, None)
            self.data.add_host(name, "host list", group="ungrouped", port=port)

    def directory(self, path: Path) -> None:
        for entry in sorted(os.listdir(path)):
            if entry.startswith(".") or entry in _SKIPPED_DIRS or entry.endswith(_SKIPPED_SUFFIXES):
                continue
            child = path / entry
            if child.is_dir():
                self.directory(child)
            else:
                self.file(child)

    def file(self, path: Path) -> None:
        kind = file_kind(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InventoryError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        except OSError as exc:
            raise InventoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if kind == "ini":
            parse_ini(self.data, path, text)
        elif kind == "json":
            self.document(path, load_json(path, text) if text.strip() else None)
        elif kind == "yaml":
            self.document(path, load_yaml(path, text, self.keyring))
        elif kind == "aws_ec2":
            from cdlib.inventory.aws_ec2 import parse_aws_ec2

            config = load_yaml(path, text, self.keyring)
            parse_aws_ec2(self.data, path, config)
        elif kind == "python":
            from cdlib.inventory.python_source import run_python_inventory

            self.document(path, run_python_inventory(path, self.extra_vars))
        else:
            self.auto(path, text)

    def document(self, path: Path, document: Any) -> None:
        if isinstance(document, Mapping) and "plugin" in document:
            plugin = document.get("plugin")
            if plugin in _EC2_PLUGIN_NAMES:
                raise InventoryError(
                    f"{path}: an {plugin} configuration must be in a file whose name ends "
                    "with aws_ec2.yml or aws_ec2.yaml"
                )
            raise InventoryError(
                f"{path}: inventory plugin {plugin!r} is not supported; cdlib supports "
                "amazon.aws.aws_ec2 (in a file named *aws_ec2.yml)"
            )
        if is_list_format(document):
            parse_list_format(self.data, path, document)
        else:
            parse_structured(self.data, path, document)

    def auto(self, path: Path, text: str) -> None:
        # Ansible tries YAML first and falls back to INI; a YAML error is only
        # reported when the INI reading fails too.
        yaml_error: InventoryError | None = None
        try:
            document = load_yaml(path, text, self.keyring)
        except InventoryError as exc:
            yaml_error, document = exc, None
        if isinstance(document, Mapping) and all(
            v is None or isinstance(v, Mapping) for v in document.values()
        ):
            self.document(path, document)
            return
        try:
            parse_ini(self.data, path, text)
        except InventoryError as exc:
            if yaml_error is not None and text.lstrip().startswith(("all:", "---")):
                raise yaml_error from None
            raise exc from None


def load_inventory(
    sources: str | Path | Sequence[str | Path],
    extra_vars: Mapping[str, Any] | None = None,
    *,
    playbook_dir: str | Path | None = None,
    vault: Keyring | None = None,
) -> Inventory:
    """Read inventory ``sources`` and return the merged :class:`Inventory`.

    A source that is a comma-separated host list (``"a,b,"``) is accepted as in Ansible.
    Several sources are merged in order; later ones add hosts and override variables.
    ``playbook_dir``: its ``group_vars/`` and ``host_vars/`` apply too, each just above the
    inventory's own (Ansible's ``--playbook-dir``).
    ``vault``: the passwords for vault-encrypted files and ``!vault`` values (see
    :mod:`cdlib.vault`); ``!ssm`` and ``!secretsmanager`` values are fetched as they load.
    """
    loader = _Loader(extra_vars or {}, vault)
    # One path given alone (a str is a sequence too: never walk it character by character).
    for src in [sources] if isinstance(sources, str | Path) else sources:
        loader.source(src)
    data = loader.data
    data.reconcile()
    play_dirs = [Path(playbook_dir)] if playbook_dir is not None else []
    return _build(data, loader.var_dirs, play_dirs, loader.extra_vars, vault)


def _build(
    data: InventoryData,
    var_dirs: list[Path],
    play_dirs: list[Path],
    extra: dict[str, Any],
    vault: Keyring | None = None,
) -> Inventory:
    files = VarsFiles(vault)
    group_files: dict[str, list[dict[str, Any]]] = {
        g: [files.vars_for(d, "group_vars", g) for d in var_dirs] for g in data.groups
    }
    play_group_files: dict[str, list[dict[str, Any]]] = {
        g: [files.vars_for(d, "group_vars", g) for d in play_dirs] for g in data.groups
    }
    groups: dict[str, Group] = {}
    for name, grp in data.groups.items():
        merged = dict(grp.vars)
        for layer in group_files[name]:
            merged.update(layer)
        groups[name] = Group(
            name, merged, list(grp.hosts), list(grp.children), list(grp.parents),
            grp.priority, grp.depth,
        )  # fmt: skip
    hosts: list[Host] = []
    for name, own in data.hosts.items():
        member_of = sorted(
            data.host_groups(name) - {"all"},
            key=lambda g: (data.groups[g].depth, data.groups[g].priority, g),
        )
        merged = dict(data.groups["all"].vars)
        for g in member_of:
            merged.update(data.groups[g].vars)
        for layer in group_files["all"] + play_group_files["all"]:
            merged.update(layer)
        # Source by source, and within a source group by group (Ansible's loop order).
        for i in range(len(var_dirs)):
            for g in member_of:
                merged.update(group_files[g][i])
        for i in range(len(play_dirs)):
            for g in member_of:
                merged.update(play_group_files[g][i])
        merged.update(own)
        for d in var_dirs + play_dirs:
            merged.update(files.vars_for(d, "host_vars", name))
        merged.update(extra)
        hosts.append(Host(name, merged, member_of))
    inventory = Inventory(hosts, groups)
    inventory.extra_vars = dict(extra)
    return inventory
