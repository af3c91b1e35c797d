"""YAML and JSON inventories: top-level groups with ``hosts``, ``vars`` and ``children``.

The shape is Ansible's::

    all:
      vars: {ntp: ntp.example.com}
      children:
        web:
          hosts:
            web[01:03].example.com: {http_port: 8080}

Where Ansible only warns (a group that is not a mapping, an unknown key such as a
misspelt ``host:``), cdlib stops with an error naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cdlib._yaml import load_yaml_limited
from cdlib.inventory._address import expand_host_pattern
from cdlib.inventory._data import InventoryData
from cdlib.inventory.model import InventoryError
from cdlib.inventory.secret_tags import (
    SecretTagError,
    has_secret_refs,
    register_secret_tags,
    resolve_secrets,
    secret_leaves,
)
from cdlib.vault.envelope import VaultError, is_encrypted
from cdlib.vault.keyring import Keyring

_SECTIONS = ("hosts", "vars", "children")


class _Map(dict[Any, Any]):
    """A mapping that remembers the line it started on."""

    line: int | None = None


class _LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader, keeping line numbers and accepting Ansible's ``!unsafe``."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Any:
    data = _Map()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


def _construct_unsafe(loader: _LineLoader, node: yaml.Node) -> Any:
    # '!unsafe' marks a value Ansible must not template; to cdlib it is just the value.
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, "bad !unsafe value", node.start_mark)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("!unsafe", _construct_unsafe)
register_secret_tags(_LineLoader)


def load_yaml(path: Path, text: str, keyring: Keyring | None = None) -> Any:
    """Parse YAML ``text``; errors name ``path`` and the line.

    A whole vault-encrypted ``text`` is decrypted first (its text values become
    :class:`~cdlib.secret.Secret`); ``!vault``, ``!ssm`` and ``!secretsmanager`` values
    are resolved into secrets (see :mod:`cdlib.inventory.secret_tags`).
    """
    whole_vault = is_encrypted(text)
    if whole_vault:
        text = decrypt_text(path, text, keyring)
    try:
        document = load_yaml_limited(text, _LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}: {problem}" if context else problem
        raise InventoryError(f"{where}: invalid YAML: {detail}") from None
    except (RecursionError, MemoryError):
        raise InventoryError(f"{path}: invalid YAML: nested too deeply") from None
    check_acyclic(document, str(path))
    if has_secret_refs(document):
        try:
            document = resolve_secrets(document, str(path), keyring)
        except SecretTagError as exc:
            raise InventoryError(str(exc)) from None
    return secret_leaves(document) if whole_vault else document


def decrypt_text(path: Path, text: str, keyring: Keyring | None) -> str:
    """The plaintext of a whole vault-encrypted file; errors name the file and vault ids."""
    try:
        plain, _ = (keyring or Keyring()).decrypt(text, str(path))
        return plain.decode("utf-8")
    except VaultError as exc:
        raise InventoryError(str(exc)) from None
    except UnicodeDecodeError:
        raise InventoryError(f"{path}: the decrypted content is not UTF-8 text") from None


def load_json(path: Path, text: str) -> Any:
    """Parse JSON ``text``; errors name ``path`` and the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise InventoryError(f"{path}: invalid JSON: nested too deeply") from None


def check_acyclic(value: Any, where: str) -> None:
    """Refuse a value that contains itself (a recursive YAML alias, say)."""
    active: set[int] = set()
    done: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, leaving = stack.pop()
        if not isinstance(item, dict | list):
            continue
        key = id(item)
        if leaving:
            active.discard(key)
            done.add(key)
            continue
        if key in active:
            raise InventoryError(f"{where}: a value contains itself (recursive alias)")
        if key in done:
            continue
        active.add(key)
        stack.append((item, True))
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, False) for c in children)


def plain(value: Any, _memo: dict[int, Any] | None = None) -> Any:
    """``value`` with line-tracking mappings turned into plain dicts.

    Shared parts (YAML aliases) stay shared, so that a small file with many aliases
    cannot blow up into a huge copy. ``value`` must be acyclic (see check_acyclic).
    """
    if not isinstance(value, dict | list):
        return value
    memo = {} if _memo is None else _memo
    key = id(value)
    if key not in memo:
        if isinstance(value, dict):
            memo[key] = {k: plain(v, memo) for k, v in value.items()}
        else:
            memo[key] = [plain(v, memo) for v in value]
    return memo[key]


class _YamlInventory:
    def __init__(self, data: InventoryData, path: Path) -> None:
        self.data = data
        self.path = path

    def where(self, node: Any, fallback: int | None = None) -> str:
        line = getattr(node, "line", None) or fallback
        return f"{self.path}:{line}" if line else str(self.path)

    def group(self, name: Any, body: Any, line: int | None) -> str:
        where = self.where(body, line)
        if not isinstance(name, str) or not name:
            raise InventoryError(f"{where}: group name {name!r} must be non-empty text")
        if body is not None and not isinstance(body, Mapping):
            raise InventoryError(
                f"{where}: group {name!r} must be a mapping with hosts, vars or children, "
                f"not {type(body).__name__}"
            )
        self.data.add_group(name, where)
        if body is None:
            return name
        for key, section in body.items():
            if key not in _SECTIONS:
                raise InventoryError(
                    f"{where}: unexpected key {key!r} in group {name!r} "
                    "(expected hosts, vars or children)"
                )
            if isinstance(section, str):
                section = {section: None}
            if section is None:
                continue
            if not isinstance(section, Mapping):
                raise InventoryError(
                    f"{where}: {key!r} of group {name!r} must be a mapping, "
                    f"not {type(section).__name__}"
                )
            line_here = getattr(section, "line", None) or getattr(body, "line", None)
            if key == "vars":
                for var, value in section.items():
                    self.data.set_group_var(name, str(var), plain(value), self.where(section))
            elif key == "children":
                for child, child_body in section.items():
                    child = self.group(child, child_body, line_here)
                    self.data.add_child(name, child, self.where(child_body, line_here))
            else:
                for pattern, host_vars in section.items():
                    self.hosts(name, pattern, host_vars, line_here)
        return name

    def hosts(self, group: str, pattern: Any, host_vars: Any, line: int | None) -> None:
        where = self.where(host_vars, line)
        if not isinstance(pattern, str):
            raise InventoryError(
                f"{where}: host {pattern!r} in group {group!r} must be text; quote numbers"
            )
        if host_vars is None:
            host_vars = {}
        if not isinstance(host_vars, Mapping):
            raise InventoryError(
                f"{where}: variables of host {pattern!r} must be a mapping, "
                f"not {type(host_vars).__name__}"
            )
        try:
            names, port = expand_host_pattern(pattern)
        except InventoryError as exc:
            raise InventoryError(f"{where}: {exc}") from None
        for host in names:
            self.data.add_host(host, where, group=group, port=port)
            for key, value in host_vars.items():
                self.data.set_host_var(host, str(key), plain(value))


def parse_structured(data: InventoryData, path: Path, document: Any) -> None:
    """Add the groups of a parsed YAML/JSON inventory ``document`` to ``data``."""
    if document is None or document == {}:
        return  # an empty file (or only comments) is an empty inventory, as in Ansible
    if not isinstance(document, Mapping):
        raise InventoryError(
            f"{path}: a YAML/JSON inventory must be a mapping of groups (e.g. 'all:'), "
            f"not {type(document).__name__}"
        )
    parser = _YamlInventory(data, path)
    for name, body in document.items():
        parser.group(name, body, getattr(document, "line", None))


def is_list_format(document: Any) -> bool:
    """Whether ``document`` is in ``ansible-inventory --list`` form (has ``_meta``)."""
    return isinstance(document, Mapping) and "_meta" in document


def parse_list_format(data: InventoryData, path: Path, document: Mapping[Any, Any]) -> None:
    """Add an ``ansible-inventory --list`` / dynamic-inventory-script document to ``data``.

    Each key but ``_meta`` is a group: a list of hosts, or a mapping with ``hosts``
    (list), ``vars`` (mapping) and ``children`` (list); ``_meta.hostvars`` maps host
    names to their variables.
    """
    meta = document.get("_meta") or {}
    hostvars = meta.get("hostvars") if isinstance(meta, Mapping) else None
    if hostvars is None:
        hostvars = {}
    if not isinstance(hostvars, Mapping):
        raise InventoryError(f"{path}: '_meta.hostvars' must be a mapping of host names")
    where = str(path)
    for name, body in document.items():
        if name == "_meta":
            continue
        if not isinstance(name, str) or not name:
            raise InventoryError(f"{where}: group name {name!r} must be non-empty text")
        data.add_group(name, where)
        if isinstance(body, list):
            body = {"hosts": body}
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise InventoryError(f"{where}: group {name!r} must be a list or a mapping")
        unknown = set(body) - set(_SECTIONS)
        if unknown:
            raise InventoryError(
                f"{where}: unexpected key {sorted(map(str, unknown))[0]!r} in group {name!r} "
                "(expected hosts, vars or children)"
            )
        hosts = body.get("hosts") or []
        children = body.get("children") or []
        variables = body.get("vars") or {}
        if not isinstance(hosts, list) or not isinstance(children, list):
            raise InventoryError(f"{where}: 'hosts' and 'children' of {name!r} must be lists")
        if not isinstance(variables, Mapping):
            raise InventoryError(f"{where}: 'vars' of group {name!r} must be a mapping")
        for host in hosts:
            if not isinstance(host, str) or not host:
                raise InventoryError(f"{where}: host {host!r} in group {name!r} must be text")
            data.add_host(host, where, group=name)
        for key, value in variables.items():
            data.set_group_var(name, str(key), plain(value), where)
        for child in children:
            if not isinstance(child, str) or not child:
                raise InventoryError(f"{where}: child {child!r} of {name!r} must be text")
            data.add_group(child, where)
            data.add_child(name, child, where)
    for host, host_vars in hostvars.items():
        if not isinstance(host_vars, Mapping):
            raise InventoryError(f"{where}: _meta.hostvars[{host!r}] must be a mapping")
        data.add_host(str(host), where)
        for key, value in host_vars.items():
            data.set_host_var(str(host), str(key), plain(value))
