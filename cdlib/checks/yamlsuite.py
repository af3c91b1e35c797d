"""Suites as YAML files, validated with errors that name the file and line.

::

    suite: web-smoke
    retry: {attempts: 20, timeout: 15, backoff: 0.2, retry_on: [connect, timeout]}
    checks:
      - name: health
        http: "http://{{ address }}:8080/health"
        status: 200
        json_equals: {"$.version": "1.4.2"}
        latency_budget: 0.5
      - tcp: "{{ address }}:8080"
      - command: "test -x /opt/app/bin/start"
      - process: "app.py"
      - service: nginx
      - file: /opt/app/VERSION
        contains: "1.4.2"

Each check has exactly one type key (``http``, ``tcp``, ``command``, ``process``,
``service``, ``file``) holding its main argument, plus that type's options. The whole file
is checked before anything runs; every problem is reported as ``file:line:col: message``,
unknown keys with a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cdlib._yaml import compose_yaml
from cdlib.checks.base import Check
from cdlib.checks.http import HttpCheck
from cdlib.checks.retry import Retry
from cdlib.checks.suite import Suite, SuiteError
from cdlib.checks.system import CommandCheck, FileCheck, ProcessCheck, ServiceCheck, TcpCheck


class _Invalid(Exception):
    """A value of the wrong shape; the message says what was expected."""


Validator = Callable[[Node], Any]


def _plain(node: Node) -> Any:
    # A fresh constructor per call: they cache constructed objects by node.
    return SafeConstructor().construct_object(node, deep=True)


def _str(node: Node) -> str:
    v = _plain(node)
    if not isinstance(v, str) or not v:
        raise _Invalid(f"expected a non-empty string, got {v!r}")
    return v


def _bool(node: Node) -> bool:
    v = _plain(node)
    if not isinstance(v, bool):
        raise _Invalid(f"expected true or false, got {v!r}")
    return v


def _int(node: Node) -> int:
    v = _plain(node)
    if not isinstance(v, int) or isinstance(v, bool):
        raise _Invalid(f"expected an integer, got {v!r}")
    return v


def _seconds(node: Node) -> float:
    v = _plain(node)
    if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
        raise _Invalid(f"expected a number of seconds > 0, got {v!r}")
    return float(v)


def _seconds0(node: Node) -> float:
    v = _plain(node)
    if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
        raise _Invalid(f"expected a number of seconds >= 0, got {v!r}")
    return float(v)


def _ints(node: Node) -> int | tuple[int, ...]:
    v = _plain(node)
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return tuple(v)
    raise _Invalid(f"expected an integer or a list of integers, got {v!r}")


def _strs(node: Node) -> tuple[str, ...]:
    v = _plain(node)
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise _Invalid(f"expected a string or a list of strings, got {v!r}")


def _str_map(node: Node) -> dict[str, str]:
    v = _plain(node)
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise _Invalid(f"expected a mapping of names to strings, got {v!r}")
    bad = [k for k, x in v.items() if not isinstance(x, str | int | float) or isinstance(x, bool)]
    if bad:
        raise _Invalid(f"values must be strings; {bad[0]!r} is {v[bad[0]]!r}")
    return {k: str(x) for k, x in v.items()}


def _json_map(node: Node) -> dict[str, Any]:
    v = _plain(node)
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise _Invalid(f"expected a mapping of JSON paths to values, got {v!r}")
    return v


def _choice(*allowed: str) -> Validator:
    def check(node: Node) -> str:
        v = _plain(node)
        if v not in allowed:
            raise _Invalid(f"expected one of {', '.join(allowed)}, got {v!r}")
        return str(v)

    return check


_COMMON: dict[str, Validator] = {
    "name": _str,
    "on": _choice("control", "host"),
    "timeout": _seconds,
}

_OPTIONS: dict[str, dict[str, Validator]] = {
    "http": {
        "method": _str,
        "headers": _str_map,
        "body": _str,
        "status": _ints,
        "body_contains": _strs,
        "body_regex": _str,
        "json_equals": _json_map,
        "json_contains": _json_map,
        "header_equals": _str_map,
        "header_matches": _str_map,
        "verify_tls": _bool,
        "ca_bundle": _str,
        "latency_budget": _seconds,
    },
    "tcp": {"open": _bool},
    "command": {
        "exit_code": _ints,
        "stdout_contains": _strs,
        "stdout_regex": _str,
        "stderr_contains": _strs,
        "sudo": _bool,
    },
    "process": {"running": _bool, "min_count": _int},
    "service": {"running": _bool},
    "file": {
        "exists": _bool,
        "kind": _choice("file", "directory"),
        "contains": _strs,
        "regex": _str,
        "sudo": _bool,
        "max_bytes": _int,
    },
}

_RETRY: dict[str, Validator] = {
    "attempts": _int,
    "timeout": _seconds,
    "backoff": _seconds0,
    "max_backoff": _seconds0,
    "jitter": _seconds0,
    "retry_on": _strs,
}

_TOP = ("suite", "description", "retry", "checks")


class _Loader:
    """Walks the composed node tree, collecting every error with its position."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[str] = []

    def error(self, node: Node, message: str) -> None:
        """Record ``message`` at the node's position (1-based line and column)."""
        m = node.start_mark
        self.errors.append(f"{self.filename}:{m.line + 1}:{m.column + 1}: {message}")

    def mapping(self, node: Node, what: str) -> dict[str, tuple[Node, Node]] | None:
        """The mapping's entries by key (with key and value nodes), or None after an error."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        out: dict[str, tuple[Node, Node]] = {}
        for k, v in node.value:
            # The raw text, not the resolved value: YAML 1.1 reads a bare `on` as true.
            key = k.value if isinstance(k, ScalarNode) else None
            if not isinstance(key, str):
                self.error(k, f"{what}: keys must be strings")
            elif key in out:
                self.error(k, f"{what}: duplicate key {key!r}")
            else:
                out[key] = (k, v)
        return out

    def unknown(self, key_node: Node, key: str, allowed: list[str], what: str) -> None:
        """Record an unknown key, suggesting the closest allowed one."""
        near = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; allowed: {', '.join(allowed)}"
        self.error(key_node, f"{what}: unknown key {key!r}{hint}")

    def retry(self, node: Node, base: dict[str, Any], what: str) -> dict[str, Any] | None:
        """Retry options merged over ``base``, or None after an error."""
        entries = self.mapping(node, f"{what} retry")
        if entries is None:
            return None
        values = dict(base)
        bad = False
        for key, (kn, vn) in entries.items():
            if key not in _RETRY:
                self.unknown(kn, key, list(_RETRY), f"{what} retry")
                continue
            try:
                value = _RETRY[key](vn)
                values[key] = Retry.kinds(value) if key == "retry_on" else value
            except (_Invalid, ValueError) as exc:
                self.error(vn, f"{what} retry.{key}: {exc}")
                bad = True
        if bad:
            return None
        try:
            Retry(**values)
        except ValueError as exc:
            self.error(node, f"{what} retry: {exc}")
            return None
        return values

    def check(self, node: Node, index: int, retry: dict[str, Any]) -> Check | None:
        """The check defined by one list item, or None after recording its errors."""
        what = f"checks[{index}]"
        entries = self.mapping(node, what)
        if entries is None:
            return None
        types = [k for k in entries if k in _OPTIONS]
        if len(types) != 1:
            found = f"found {', '.join(types)}" if types else "found none"
            self.error(node, f"{what}: needs exactly one of {', '.join(_OPTIONS)} ({found})")
            return None
        kind = types[0]
        what = f"{what} ({kind})"
        allowed = {**_COMMON, **_OPTIONS[kind]}
        kwargs: dict[str, Any] = {}
        ok = True
        for key, (kn, vn) in entries.items():
            if key == kind:
                continue
            if key == "retry":
                r = self.retry(vn, retry, what)
                ok = ok and r is not None
                retry = r or retry
                continue
            if key not in allowed:
                self.unknown(kn, key, [*allowed, "retry"], what)
                ok = False
                continue
            try:
                kwargs[key] = allowed[key](vn)
            except _Invalid as exc:
                self.error(vn, f"{what}.{key}: {exc}")
                ok = False
        main_node = entries[kind][1]
        try:
            main = _str(main_node)
        except _Invalid as exc:
            self.error(main_node, f"{what}: {exc}")
            return None
        if not ok:
            return None
        try:
            return _build(kind, main, kwargs, Retry(**retry))
        except (ValueError, TypeError, re.error) as exc:
            self.error(node, f"{what}: {exc}")
            return None


def _build(kind: str, main: str, kwargs: dict[str, Any], retry: Retry) -> Check:
    if kind == "http":
        return HttpCheck(url=main, retry=retry, **kwargs)
    if kind == "tcp":
        host, sep, port = main.rpartition(":")
        if not sep or not host:
            raise ValueError(f"tcp needs 'host:port', got {main!r}")
        return TcpCheck(host=host.strip("[]"), port=port, retry=retry, **kwargs)
    if kind == "command":
        return CommandCheck(command=main, retry=retry, **kwargs)
    if kind == "process":
        return ProcessCheck(pattern=main, retry=retry, **kwargs)
    if kind == "service":
        return ServiceCheck(service=main, retry=retry, **kwargs)
    return FileCheck(path=main, retry=retry, **kwargs)


def parse_suite(text: str, filename: str = "<string>") -> Suite:
    """Parse and validate a YAML suite; :class:`SuiteError` lists every problem with file:line."""
    try:
        root = compose_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        raise SuiteError(f"{pos}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{filename}: invalid YAML: {exc}") from None
    if root is None:
        raise SuiteError(f"{filename}:1:1: empty suite file")
    ld = _Loader(filename)
    top = ld.mapping(root, "suite file")
    if top is None:
        raise SuiteError("\n".join(ld.errors))
    for key, (kn, _) in top.items():
        if key not in _TOP:
            ld.unknown(kn, key, list(_TOP), "suite file")
    name = ""
    if "suite" not in top:
        ld.error(root, "suite file: missing 'suite' (the suite's name)")
    else:
        try:
            name = _str(top["suite"][1])
        except _Invalid as exc:
            ld.error(top["suite"][1], f"suite: {exc}")
    retry: dict[str, Any] = {}
    if "retry" in top:
        retry = ld.retry(top["retry"][1], {}, "suite") or {}
    checks: list[Check] = []
    if "checks" not in top:
        ld.error(root, "suite file: missing 'checks' (a list of checks)")
    elif not isinstance(top["checks"][1], SequenceNode) or not top["checks"][1].value:
        ld.error(top["checks"][1], "checks: must be a non-empty list")
    else:
        for i, item in enumerate(top["checks"][1].value):
            c = ld.check(item, i, retry)
            if c is not None:
                checks.append(c)
    if ld.errors:
        raise SuiteError("\n".join(ld.errors))
    return Suite(name, tuple(checks), source=filename)


def load_suite(path: str | Path) -> Suite:
    """Read and validate the YAML suite at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"{p}: cannot read suite: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{p}: suite is not UTF-8: {exc}") from None
    return parse_suite(text, str(p))


__all__ = ["load_suite", "parse_suite"]
