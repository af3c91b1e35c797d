"""A flag file in flagd's format: parse JSON or YAML, remember lines, dump back.

The document is kept as the plain JSON object flagd reads, so nothing is lost
between reading and writing a file; :class:`FlagDocument` only adds where it came
from and the line of each key, so errors can say ``file:line``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cdlib._yaml import load_yaml_limited
from cdlib.flags.errors import FlagFileError, FlagSourceError, UnknownFlagError

Format = Literal["json", "yaml"]
JsonPath = tuple[str | int, ...]

__all__ = ["FlagDocument", "Format", "format_for", "load_document", "parse_document"]


def format_for(name: str) -> Format:
    """The format a file name implies: YAML for ``.yaml``/``.yml``, JSON otherwise."""
    return "yaml" if name.lower().endswith((".yaml", ".yml")) else "json"


@dataclass(frozen=True)
class FlagDocument:
    """A parsed flag file: ``data`` is flagd's JSON object, as read."""

    data: dict[str, Any]
    source: str = "<flags>"
    fmt: Format = "json"
    lines: Mapping[JsonPath, int] = field(default_factory=dict, compare=False, repr=False)

    # -- reading ----------------------------------------------------------
    @property
    def flags(self) -> dict[str, Any]:
        """The ``flags`` object (empty when missing or malformed)."""
        flags = self.data.get("flags")
        return flags if isinstance(flags, dict) else {}

    def keys(self) -> Iterator[str]:
        """Flag keys in file order."""
        return iter(self.flags)

    def flag(self, key: str) -> dict[str, Any]:
        """The definition of flag ``key``; raises :class:`UnknownFlagError`."""
        definition = self.flags.get(key)
        if not isinstance(definition, dict):
            raise UnknownFlagError(key, self.source)
        return definition

    def where(self, *path: str | int) -> str:
        """``source:line`` of the deepest known prefix of ``path``, else ``source``."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return f"{self.source}:{line}"
        return self.source

    # -- writing ----------------------------------------------------------
    def with_data(self, data: dict[str, Any]) -> FlagDocument:
        """A new document with ``data`` and the same source and format (no line map)."""
        return FlagDocument(data=data, source=self.source, fmt=self.fmt)

    def copy_data(self) -> dict[str, Any]:
        """A deep copy of ``data`` that callers may change freely."""
        return copy.deepcopy(self.data)

    def dumps(self, fmt: Format | None = None) -> str:
        """Serialise in ``fmt`` (default: the document's own format)."""
        if (fmt or self.fmt) == "yaml":
            return yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True)
        return json.dumps(self.data, indent=2, ensure_ascii=False) + "\n"


def parse_document(text: str, source: str = "<flags>", fmt: Format | None = None) -> FlagDocument:
    """Parse flag-file text; raises :class:`FlagFileError` with ``source:line``."""
    fmt = fmt or format_for(source)
    data: object
    if fmt == "yaml":
        try:
            data = load_yaml_limited(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            problem = getattr(exc, "problem", None) or str(exc)
            raise FlagFileError(f"{where}: invalid YAML: {problem}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FlagFileError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise FlagFileError(f"{source}:1: a flag file must be an object with 'flags', got {kind}")
    return FlagDocument(data=data, source=source, fmt=fmt, lines=_line_map(text))


def load_document(path: str | Path) -> FlagDocument:
    """Read and parse the flag file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlagSourceError(f"{p}: cannot read flag file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FlagFileError(f"{p}: flag file is not UTF-8 text") from exc
    return parse_document(text, str(p), format_for(p.name))


def _line_map(text: str) -> dict[JsonPath, int]:
    """Line (1-based) of each key and list item; JSON is YAML enough for this."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict[JsonPath, int] = {}

    def walk(node: yaml.Node, path: JsonPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    sub = (*path, str(key_node.value))
                    lines[sub] = key_node.start_mark.line + 1
                    walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                sub = (*path, index)
                lines[sub] = item.start_mark.line + 1
                walk(item, sub)

    if root is not None:
        walk(root, ())
    return lines
