"""Validation of a flag document against flagd's rules.

Errors are what flagd's schema or its reference evaluator refuse (the provider
would keep the old file and report a parse error); warnings are targeting rules
that load but will misbehave at evaluation time (a ``$ref`` to no evaluator, a
fractional weight that is not a whole number). A file with errors is never
written to a host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from openfeature.contrib.tools.flagd.core import FlagdCore

from cdlib.flags.document import FlagDocument
from cdlib.flags.errors import FlagValidationError, Problem, Severity

__all__ = ["check_document", "validate_document", "variant_kind"]

_ROOT_KEYS = {"flags", "$evaluators", "metadata", "$schema"}
# "source" and "selector" are set by flagd's sync layer; the reference evaluator drops them.
_FLAG_KEYS = {"state", "variants", "defaultVariant", "targeting", "metadata", "source", "selector"}
_STATES = ("ENABLED", "DISABLED")
_MAX_SAFE_INT = 2**53 - 1
_SEMVER_OPS = {"=", "!=", ">", "<", ">=", "<=", "^", "~"}


def variant_kind(value: object) -> str | None:
    """flagd's type of a variant value: boolean, string, number, object; None if invalid."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return None


def validate_document(doc: FlagDocument) -> list[Problem]:
    """Every problem in ``doc``, errors first; an empty list means flagd accepts it."""
    checker = _Checker(doc)
    checker.run()
    problems = sorted(checker.problems, key=lambda p: p.severity != "error")
    if not any(p.severity == "error" for p in problems):
        # Belt and braces: whatever the reference evaluator refuses is an error too.
        try:
            FlagdCore().set_flags(json.dumps(doc.data))
        except Exception as exc:
            message = getattr(exc, "error_message", None) or str(exc) or type(exc).__name__
            problems.insert(
                0,
                Problem("error", f"flagd's evaluator refuses the file: {message}", doc.source),
            )
    return problems


def check_document(doc: FlagDocument) -> list[Problem]:
    """Validate ``doc``; raise :class:`FlagValidationError` on errors, else return warnings."""
    problems = validate_document(doc)
    if any(p.severity == "error" for p in problems):
        raise FlagValidationError(problems)
    return problems


class _Checker:
    def __init__(self, doc: FlagDocument) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        evaluators = doc.data.get("$evaluators")
        self.evaluators = set(evaluators) if isinstance(evaluators, dict) else set()

    def add(
        self,
        severity: Severity,
        message: str,
        path: tuple[str | int, ...],
        flag: str | None = None,
        field: str | None = None,
    ) -> None:
        self.problems.append(Problem(severity, message, self.doc.where(*path), flag, field))

    def run(self) -> None:
        data = self.doc.data
        for key in data:
            if key not in _ROOT_KEYS:
                self.add("warning", f"unknown top-level key {key!r} is ignored by flagd", (key,))
        if "flags" not in data:
            self.add("error", "the file has no 'flags' object", ())
        flags = data.get("flags")
        if "flags" in data and not isinstance(flags, dict):
            self.add(
                "error",
                "'flags' must be an object keyed by flag key (the array form is for flagd "
                "imports only)",
                ("flags",),
            )
        self._metadata(data.get("metadata"), ("metadata",), None, top=True)
        self._evaluators(data.get("$evaluators"))
        if isinstance(flags, dict):
            for key, definition in flags.items():
                self._flag(key, definition)

    def _evaluators(self, evaluators: object) -> None:
        if evaluators is None:
            return
        if not isinstance(evaluators, dict):
            self.add("error", "'$evaluators' must be an object of named rules", ("$evaluators",))
            return
        for name, rule in evaluators.items():
            path = ("$evaluators", name)
            if not isinstance(rule, dict):
                self.add("error", f"evaluator {name!r} must be a JsonLogic object", path)
            else:
                self._targeting(rule, path, None, f"$evaluators.{name}", None)

    def _metadata(
        self, meta: object, path: tuple[str | int, ...], flag: str | None, *, top: bool = False
    ) -> None:
        if meta is None:
            return
        if not isinstance(meta, dict):
            self.add("error", "metadata must be an object", path, flag, "metadata")
            return
        for mkey, value in meta.items():
            field = f"metadata.{mkey}"
            if not isinstance(value, str | int | float | bool):
                self.add(
                    "error",
                    f"metadata values must be string, number or boolean, got {_kind(value)}",
                    (*path, mkey),
                    flag,
                    field,
                )
            elif top and mkey in ("flagSetId", "version") and not isinstance(value, str):
                self.add("error", f"'{mkey}' must be a string", (*path, mkey), flag, field)

    def _flag(self, key: object, definition: object) -> None:
        if not isinstance(key, str) or not key:
            self.add("error", f"flag keys must be non-empty strings, got {key!r}", ("flags",))
            return
        path: tuple[str | int, ...] = ("flags", key)
        if not isinstance(definition, dict):
            self.add("error", f"a flag must be an object, got {_kind(definition)}", path, key)
            return
        for field in definition:
            if field not in _FLAG_KEYS:
                hint = f" (did you mean {_guess(field)!r}?)" if _guess(field) else ""
                self.add(
                    "error",
                    f"unknown field{hint}; allowed: state, variants, defaultVariant, "
                    "targeting, metadata",
                    (*path, field),
                    key,
                    str(field),
                )
        state = definition.get("state")
        if "state" not in definition:
            self.add("error", "'state' is required (ENABLED or DISABLED)", path, key, "state")
        elif state not in _STATES:
            self.add(
                "error",
                f"must be ENABLED or DISABLED, got {state!r}",
                (*path, "state"),
                key,
                "state",
            )
        variants = self._variants(key, definition.get("variants"), "variants" in definition)
        self._default_variant(key, definition, variants)
        if "targeting" in definition:
            targeting = definition["targeting"]
            if not isinstance(targeting, dict):
                self.add(
                    "error",
                    f"must be a JsonLogic object, got {_kind(targeting)}",
                    (*path, "targeting"),
                    key,
                    "targeting",
                )
            else:
                self._targeting(targeting, (*path, "targeting"), key, "targeting", variants)
        self._metadata(definition.get("metadata"), (*path, "metadata"), key)

    def _variants(self, key: str, variants: object, present: bool) -> dict[str, Any] | None:
        path = ("flags", key, "variants")
        if not present:
            self.add("error", "'variants' is required", path[:2], key, "variants")
            return None
        if not isinstance(variants, dict) or not variants:
            self.add("error", "must be a non-empty object of named values", path, key, "variants")
            return None
        kinds: dict[str, list[str]] = {}
        for name, value in variants.items():
            field = f"variants.{name}"
            if not isinstance(name, str) or not name:
                self.add(
                    "error",
                    f"variant names must be non-empty strings, got {name!r}"
                    + (" (quote on/off/yes/no in YAML)" if isinstance(name, bool) else ""),
                    path,
                    key,
                    "variants",
                )
                continue
            kind = variant_kind(value)
            if kind is None:
                self.add(
                    "error",
                    f"a variant value must be boolean, string, number or object, got "
                    f"{_kind(value)}",
                    (*path, name),
                    key,
                    field,
                )
                continue
            if kind == "number" and isinstance(value, int) and abs(value) > _MAX_SAFE_INT:
                self.add(
                    "error",
                    "integer is outside the safe range ±(2^53-1)",
                    (*path, name),
                    key,
                    field,
                )
            kinds.setdefault(kind, []).append(name)
        if len(kinds) > 1:
            detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items())
            self.add(
                "error", f"all variants must have the same type ({detail})", path, key, "variants"
            )
        return variants

    def _default_variant(
        self, key: str, definition: dict[str, Any], variants: dict[str, Any] | None
    ) -> None:
        if "defaultVariant" not in definition:
            return
        default = definition["defaultVariant"]
        path = ("flags", key, "defaultVariant")
        if default is None or default == "":
            return  # null means "use the code default"; flagd treats "" the same
        if not isinstance(default, str):
            self.add(
                "error",
                f"must be a variant name (string) or null, got {default!r}"
                + (" (quote it in YAML)" if isinstance(default, bool) else ""),
                path,
                key,
                "defaultVariant",
            )
        elif variants is not None and default not in variants:
            self.add(
                "error",
                f"{default!r} is not one of the variants ({', '.join(map(str, variants))})",
                path,
                key,
                "defaultVariant",
            )

    # -- targeting: loads fine in flagd, but misbehaves when evaluated ------
    def _targeting(
        self,
        node: object,
        path: tuple[str | int, ...],
        flag: str | None,
        field: str,
        variants: dict[str, Any] | None,
    ) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                self._targeting(item, (*path, index), flag, f"{field}[{index}]", variants)
            return
        if not isinstance(node, dict):
            return
        if set(node) == {"$ref"}:
            name = node["$ref"]
            if name not in self.evaluators:
                self.add(
                    "warning",
                    f"$ref to unknown evaluator {name!r}: every evaluation fails with PARSE_ERROR",
                    (*path, "$ref"),
                    flag,
                    f"{field}.$ref",
                )
            return
        for op, args in node.items():
            sub = f"{field}.{op}"
            check = _OPERATOR_CHECKS.get(op)
            if check is not None:
                for message in check(args, variants):
                    self.add("warning", message, (*path, op), flag, sub)
            self._targeting(args, (*path, op), flag, sub, variants)


def _fractional(args: object, variants: dict[str, Any] | None) -> list[str]:
    if not isinstance(args, list) or not args:
        return ["fractional needs a list of [variant, weight] buckets"]
    buckets = args[1:] if not isinstance(args[0], list) else args
    out = []
    for bucket in buckets:
        if not isinstance(bucket, list) or not 1 <= len(bucket) <= 2:
            out.append(f"fractional bucket {bucket!r} must be [variant] or [variant, weight]")
            continue
        name = bucket[0]
        if variants is not None and isinstance(name, str) and name not in variants:
            out.append(f"fractional bucket names unknown variant {name!r}")
        if len(bucket) == 2:
            weight = bucket[1]
            if isinstance(weight, bool) or (
                not isinstance(weight, dict) and not isinstance(weight, int)
            ):
                out.append(f"fractional weight {weight!r} must be a whole number")
            elif isinstance(weight, int) and weight < 0:
                out.append(f"fractional weight {weight} is negative; flagd counts it as 0")
    return out


def _sem_ver(args: object, variants: dict[str, Any] | None) -> list[str]:
    if not isinstance(args, list) or len(args) != 3:
        return ["sem_ver takes [version, operator, version]"]
    if isinstance(args[1], str) and args[1] not in _SEMVER_OPS:
        return [f"sem_ver operator {args[1]!r} is not one of {' '.join(sorted(_SEMVER_OPS))}"]
    return []


def _affix(args: object, variants: dict[str, Any] | None) -> list[str]:
    if not isinstance(args, list) or len(args) != 2:
        return ["starts_with/ends_with take [value, affix]"]
    return []


_OPERATOR_CHECKS: dict[str, Callable[[object, dict[str, Any] | None], list[str]]] = {
    "fractional": _fractional,
    "sem_ver": _sem_ver,
    "starts_with": _affix,
    "ends_with": _affix,
}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {list: "array", dict: "object", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _guess(field: object) -> str | None:
    """The allowed field a typo most likely meant (same letters, case-insensitive)."""
    if not isinstance(field, str):
        return None
    folded = field.lower().replace("_", "").replace("-", "")
    for allowed in ("state", "variants", "defaultVariant", "targeting", "metadata"):
        a = allowed.lower()
        if folded == a or (abs(len(folded) - len(a)) <= 1 and _close(folded, a)):
            return allowed
    return None


def _close(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one edit."""
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :] or a[i + 1 :] == b[i + 1 :]
