"""Ansible INI inventories: ``[group]``, ``[group:children]``, ``[group:vars]``, host lines.

Values are read as Ansible reads them: a value that is a Python literal (``8080``,
``True``, ``[1, 2]``, ``'text'``) becomes that value, anything else stays a string. On
host lines the line is first split like a shell would (so quotes group words); in
``:vars`` sections everything after the first ``=`` is the value.
"""

from __future__ import annotations

import ast
import itertools
import re
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdlib.inventory._address import expand_host_pattern
from cdlib.inventory._data import InventoryData
from cdlib.inventory._secrets import unquoted_value_hint
from cdlib.inventory.model import InventoryError

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_COMMENT_MARKERS = ("#", ";")


def parse_value(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal if it is one, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _coerce(value)


def _coerce(value: Any) -> Any:
    # Only JSON-like types survive: tuples/sets become lists, the rest becomes text.
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_coerce(v) for v in value]
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


@dataclass
class _Pending:
    line: int
    state: str
    parents: list[str] = field(default_factory=list)


class _IniParser:
    def __init__(self, data: InventoryData, path: Path) -> None:
        self.data = data
        self.path = path
        self.lineno = 0

    def where(self, line: int | None = None) -> str:
        return f"{self.path}:{self.lineno if line is None else line}"

    def fail(self, message: str) -> InventoryError:
        return InventoryError(f"{self.where()}: {message}")

    def parse(self, text: str) -> None:
        pending: dict[str, _Pending] = {}
        group, state = "ungrouped", "hosts"
        for self.lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith(_COMMENT_MARKERS):
                continue
            m = _SECTION.match(line)
            if m:
                group, state = m.group(1), m.group(2) or "hosts"
                if state not in ("hosts", "children", "vars"):
                    raise self.fail(
                        f"section [{group}:{state}] has unknown type {state!r} "
                        "(expected hosts, children or vars)"
                    )
                if group not in self.data.groups:
                    # [g:vars] alone does not declare g; remember it and check at the end.
                    if state == "vars" and group not in pending:
                        pending[group] = _Pending(self.lineno, "vars")
                    self.data.add_group(group, self.where())
                if group in pending and state != "vars":
                    if pending[group].state == "children":
                        self._add_pending_children(group, pending)
                    else:
                        del pending[group]
                continue
            if line.startswith("[") and line.endswith("]"):
                raise self.fail(
                    f"invalid section header {line!r}: use [name], [name:vars] or "
                    "[name:children] with no spaces"
                )
            if state == "hosts":
                self._host_line(line, group)
            elif state == "vars":
                if "=" not in line:
                    raise self.fail(f"expected key=value in [{group}:vars], got {line!r}")
                key, value = (part.strip() for part in line.split("=", 1))
                self.data.set_group_var(group, key, parse_value(value), self.where())
            else:
                cm = _GROUP_NAME.match(line)
                if not cm:
                    raise self.fail(f"expected a group name in [{group}:children], got {line!r}")
                child = cm.group(1)
                if child in self.data.groups:
                    self.data.add_child(group, child, self.where())
                elif child in pending:
                    pending[child].parents.append(group)
                else:
                    pending[child] = _Pending(self.lineno, "children", [group])
        for name, decl in pending.items():
            if decl.state == "vars":
                raise InventoryError(
                    f"{self.where(decl.line)}: section [{name}:vars] is for group {name!r}, "
                    "which is not defined anywhere"
                )
            raise InventoryError(
                f"{self.where(decl.line)}: section [{decl.parents[-1]}:children] names "
                f"group {name!r}, which is not defined anywhere"
            )

    def _add_pending_children(self, group: str, pending: dict[str, _Pending]) -> None:
        for parent in pending[group].parents:
            self.data.add_child(parent, group, self.where(pending[group].line))
            if parent in pending and pending[parent].state == "children":
                self._add_pending_children(parent, pending)
        del pending[group]

    def _host_line(self, line: str, group: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.fail(f"cannot parse host line {line!r}: {exc}") from None
        if not tokens:
            return
        try:
            names, port = expand_host_pattern(tokens[0])
        except InventoryError as exc:
            raise self.fail(str(exc)) from None
        variables: dict[str, Any] = {}
        for previous, token in itertools.pairwise(tokens):
            if "=" not in token:
                stray = unquoted_value_hint(previous, token)
                raise self.fail(f"expected key=value after the host name, got {stray}")
            key, value = token.split("=", 1)
            variables[key] = parse_value(value)
        for name in names:
            self.data.add_host(name, self.where(), group=group, port=port)
            for key, value in variables.items():
                self.data.set_host_var(name, key, value)


def parse_ini(data: InventoryData, path: Path, text: str) -> None:
    """Add the hosts and groups of INI ``text`` (read from ``path``) to ``data``."""
    _IniParser(data, path).parse(text)
