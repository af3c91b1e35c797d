"""Ansible's common Jinja2 filters and tests, with Ansible's outputs for the same inputs.

Filters: ``to_json``, ``to_nice_json``, ``to_yaml``, ``to_nice_yaml``, ``from_json``,
``from_yaml``, ``b64encode``, ``b64decode``, ``bool``, ``regex_replace``, ``regex_search``,
``regex_findall``, ``regex_escape``, ``combine`` (``recursive``, ``list_merge``),
``ternary``, ``quote``, ``hash``, ``password_hash`` (sha512/sha256), ``basename``,
``dirname``, ``mandatory``, ``dict2items``, ``items2dict``, ``flatten``, ``unique``,
``difference``, ``union``, ``intersect``, ``symmetric_difference``; Jinja2's own
``default`` works with ``omit``. Tests: ``match``, ``search``, ``regex``, ``version``
(also ``version_compare``); Jinja2's ``defined`` and ``undefined``.

``omit`` is a global: an option whose whole value renders to it is left at its default,
as Ansible leaves a module argument out. Playbooks add their own filters and tests with
:func:`register_filter` and :func:`register_test`.

``password_hash`` implements SHA-crypt (``$6$`` / ``$5$``) from its published
specification with :mod:`hashlib`, using Ansible's default of 656,000 rounds for sha512
(535,000 for sha256), so the result equals Ansible's (with passlib) and glibc's ``crypt``.
:class:`~cdlib.secret.Secret` values inside ``to_json``/``to_yaml``/``hash`` input are
revealed, as rendered content is (the run's redactor masks them wherever it is shown).
"""

from __future__ import annotations

import base64
import hashlib
import json
import ntpath
import os
import re
import secrets
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml
from jinja2 import Undefined
from jinja2.exceptions import FilterArgumentError

from cdlib.secret import Secret

#: The value of the ``omit`` global: an option rendered to exactly this is left out.
OMIT = "__cdlib_omit_place_holder__"


class FilterError(FilterArgumentError):
    """A filter refused its input (the message says which filter and why)."""


def _reveal(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Mapping):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value


def _text(value: Any) -> str:
    value = _reveal(value)
    return value if isinstance(value, str) else str(value)


# -- serialisation ---------------------------------------------------------------------


def to_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` with Python's defaults (Ansible's ``to_json``)."""
    return json.dumps(_reveal(value), **kwargs)


def to_nice_json(value: Any, indent: int = 4, sort_keys: bool = True, **kwargs: Any) -> str:
    """Indented JSON with sorted keys (Ansible's ``to_nice_json``)."""
    return json.dumps(
        _reveal(value), indent=indent, sort_keys=sort_keys, separators=(",", ": "), **kwargs
    )


def to_yaml(value: Any, default_flow_style: bool | None = None, **kwargs: Any) -> str:
    """YAML, flow style for inner collections (Ansible's ``to_yaml``)."""
    dumped: str = yaml.dump(
        _reveal(value),
        Dumper=yaml.SafeDumper,
        allow_unicode=True,
        default_flow_style=default_flow_style,
        **kwargs,
    )
    return dumped


def to_nice_yaml(
    value: Any, indent: int = 4, default_flow_style: bool = False, **kwargs: Any
) -> str:
    """Block-style YAML indented by 4 (Ansible's ``to_nice_yaml``)."""
    return to_yaml(value, indent=indent, default_flow_style=default_flow_style, **kwargs)


def from_json(value: str, **kwargs: Any) -> Any:
    """Parse JSON text."""
    return json.loads(_text(value), **kwargs)


def from_yaml(value: Any) -> Any:
    """Parse YAML text with the safe loader (non-text input is returned as it is)."""
    if value is None:
        return None
    if isinstance(value, str | Secret):
        return yaml.safe_load(_text(value))
    return value


def b64encode(value: Any, encoding: str = "utf-8", urlsafe: bool = False) -> str:
    """Base64 of the text's bytes in ``encoding``."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(_text(value).encode(encoding, "surrogateescape")).decode("ascii")


def b64decode(value: Any, encoding: str = "utf-8", urlsafe: bool = False) -> str:
    """The text that base64 ``value`` encodes (bytes decoded with ``encoding``)."""
    decode = base64.urlsafe_b64decode if urlsafe else base64.b64decode
    return decode(_text(value).encode("utf-8")).decode(encoding, "surrogateescape")


# -- scalars ---------------------------------------------------------------------------

_TRUE = {"yes", "on", "true", "1"}
_FALSE = {"no", "off", "false", "0"}


def to_bool(value: Any) -> bool:
    """yes/on/true/1 (any case, or the numbers 1/0) to True/False; else ``value == 1``."""
    if isinstance(value, str):
        check: Any = value.lower()
    elif isinstance(value, int):
        check = str(value).lower()
    else:
        check = value
    try:
        if check in _TRUE:
            return True
        if check in _FALSE:
            return False
        return bool(check == 1)
    except TypeError:
        return False


def ternary(value: Any, true_val: Any, false_val: Any, none_val: Any = None) -> Any:
    """``true_val`` if ``value`` is true, else ``false_val`` (``none_val`` for None if given)."""
    if value is None and none_val is not None:
        return none_val
    return true_val if value else false_val


def quote(value: Any) -> str:
    """``value`` quoted as one shell word (``shlex.quote``)."""
    return shlex.quote(_text(value))


def basename(path: Any) -> str:
    """The last component of a path."""
    return os.path.basename(_text(path))


def dirname(path: Any) -> str:
    """The path without its last component."""
    return os.path.dirname(_text(path))


def win_basename(path: Any) -> str:
    """The last component of a Windows path."""
    return ntpath.basename(_text(path))


def mandatory(value: Any, msg: str | None = None) -> Any:
    """``value``, or an error when it is undefined (``msg`` replaces the message)."""
    if isinstance(value, Undefined):
        if msg is not None:
            raise FilterError(str(msg))
        name = getattr(value, "_undefined_name", None)
        shown = f"{name!r} " if name is not None else ""
        raise FilterError(f"Mandatory variable {shown}not defined.")
    return value


# -- regular expressions ---------------------------------------------------------------


def _flags(ignorecase: bool = False, multiline: bool = False) -> int:
    return (re.I if ignorecase else 0) | (re.M if multiline else 0)


def regex_replace(
    value: Any = "",
    pattern: str = "",
    replacement: str = "",
    ignorecase: bool = False,
    multiline: bool = False,
    count: int = 0,
    mandatory_count: int = 0,
) -> str:
    """``re.subn`` over the text; ``mandatory_count``: fail unless it matched that often."""
    text = _text(value)
    out, subs = re.compile(pattern, _flags(ignorecase, multiline)).subn(
        replacement, text, count=count
    )
    if mandatory_count and mandatory_count != subs:
        raise FilterError(
            f"regex_replace: {pattern!r} should match {mandatory_count} times, "
            f"but matches {subs} times"
        )
    return out


def regex_findall(value: Any, regex: str, multiline: bool = False, ignorecase: bool = False) -> Any:
    """Every match of ``regex`` (``re.findall``)."""
    return re.findall(regex, _text(value), _flags(ignorecase, multiline))


def regex_search(value: Any, regex: str, *args: str, **kwargs: Any) -> Any:
    """The first match, or with ``'\\\\1'`` / ``'\\\\g<name>'`` arguments a list of groups."""
    groups: list[int | str] = []
    for arg in args:
        named = re.match(r"\\g<(\S+)>", arg)
        numbered = re.match(r"\\(\d+)", arg)
        if named:
            groups.append(named.group(1))
        elif numbered:
            groups.append(int(numbered.group(1)))
        else:
            raise FilterError(f"regex_search: unknown argument {arg!r}")
    flags = _flags(bool(kwargs.get("ignorecase")), bool(kwargs.get("multiline")))
    match = re.search(regex, _text(value), flags)
    if match is None:
        return None
    if not groups:
        return match.group()
    return [match.group(g) for g in groups]


def regex_escape(value: Any, re_type: str = "python") -> str:
    """``value`` with regular-expression characters escaped (``python`` or ``posix_basic``)."""
    if re_type == "python":
        return re.escape(_text(value))
    if re_type == "posix_basic":
        return regex_replace(value, r"([].[^$*\\])", r"\\\1")
    raise FilterError(f"regex_escape: re_type {re_type!r} is not supported")


# -- hashing ---------------------------------------------------------------------------


def hash_filter(value: Any, hashtype: str = "sha1") -> str:
    """The hex digest of the text with ``hashtype`` (any :mod:`hashlib` algorithm)."""
    try:
        h = hashlib.new(hashtype)
    except ValueError:
        raise FilterError(f"hash: unknown hash type {hashtype!r}") from None
    h.update(_text(value).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


_CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Byte order of SHA-crypt's final encoding (from the specification's tables).
_ORDER_512 = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
]  # fmt: skip
_ORDER_256 = [
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5),
    (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
]  # fmt: skip
_SHA_CRYPT = {
    "sha512": ("6", hashlib.sha512, 656_000, _ORDER_512),
    "sha512_crypt": ("6", hashlib.sha512, 656_000, _ORDER_512),
    "sha256": ("5", hashlib.sha256, 535_000, _ORDER_256),
    "sha256_crypt": ("5", hashlib.sha256, 535_000, _ORDER_256),
}


def _b64_24(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_CRYPT64[w & 0x3F])
        w >>= 6
    return "".join(out)


def sha_crypt(password: bytes, salt: bytes, rounds: int, variant: str = "sha512") -> str:
    """SHA-crypt (``$6$rounds=N$salt$hash``) per its published specification."""
    ident, new, _, order = _SHA_CRYPT[variant]
    size = new().digest_size
    rounds = min(max(rounds, 1000), 999_999_999)
    salt = salt[:16]
    plen = len(password)

    def repeat(digest: bytes, length: int) -> bytes:
        return (digest * (length // size + 1))[:length]

    b = new(password + salt + password).digest()
    a = new(password + salt + repeat(b, plen))
    n = plen
    while n:
        a.update(b if n & 1 else password)
        n >>= 1
    digest_a = a.digest()
    p = repeat(new(password * plen).digest(), plen)
    s = repeat(new(salt * (16 + digest_a[0])).digest(), len(salt))
    c = digest_a
    for i in range(rounds):
        h = new(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    encoded = "".join(_b64_24(c[x], c[y], c[z], 4) for x, y, z in order)
    encoded += _b64_24(0, 0, c[63], 2) if size == 64 else _b64_24(0, c[31], c[30], 3)
    return f"${ident}$rounds={rounds}${salt.decode('ascii')}${encoded}"


def password_hash(
    password: Any,
    hashtype: str = "sha512",
    salt: str | None = None,
    salt_size: int | None = None,
    rounds: int | None = None,
    ident: str | None = None,
) -> str:
    """A crypt(3) hash for ``/etc/shadow``: sha512 (default) or sha256 SHA-crypt.

    Without ``salt`` a random one of ``salt_size`` (16) characters is drawn.
    """
    if hashtype not in _SHA_CRYPT:
        raise FilterError(
            f"password_hash: hash type {hashtype!r} is not supported (sha512, sha256)"
        )
    if ident is not None:
        raise FilterError("password_hash: 'ident' applies to bcrypt only, not supported")
    _, _, default_rounds, _ = _SHA_CRYPT[hashtype]
    if salt is None:
        salt = "".join(secrets.choice(_CRYPT64) for _ in range(salt_size or 16))
    if not re.fullmatch(r"[./0-9A-Za-z]+", salt):
        raise FilterError("password_hash: salt may hold only ./0-9A-Za-z")
    return sha_crypt(
        _text(password).encode("utf-8"), salt.encode("ascii"), rounds or default_rounds, hashtype
    )


# -- collections -----------------------------------------------------------------------


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def flatten(value: Any, levels: int | None = None, skip_nulls: bool = True) -> list[Any]:
    """Nested lists made flat (``levels`` deep); None/'None'/'null' items dropped."""
    out: list[Any] = []
    for item in value:
        if skip_nulls and item in (None, "None", "null"):
            continue
        if _is_sequence(item):
            if levels is None:
                out.extend(flatten(item, skip_nulls=skip_nulls))
            elif levels >= 1:
                out.extend(flatten(item, levels=int(levels) - 1, skip_nulls=skip_nulls))
            else:
                out.append(item)
        else:
            out.append(item)
    return out


def _unique_list(items: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def unique(value: Any, case_sensitive: bool = False, attribute: str | None = None) -> list[Any]:
    """Items without repeats, first seen first (case-insensitive for text by default)."""
    seen: set[Any] = set()
    out: list[Any] = []
    try:
        for item in value:
            key = item[attribute] if attribute is not None else item
            if not case_sensitive and isinstance(key, str):
                key = key.lower()
            if key not in seen:
                seen.add(key)
                out.append(item)
        return out
    except TypeError:  # unhashable items (dicts): compare by equality
        return _unique_list(list(value))


def difference(a: Any, b: Any) -> list[Any]:
    """Items of ``a`` not in ``b`` (set order, as Ansible's)."""
    try:
        return list(set(a) - set(b))
    except TypeError:
        return _unique_list([x for x in a if x not in b])


def intersect(a: Any, b: Any) -> list[Any]:
    """Items in both (set order, as Ansible's)."""
    try:
        return list(set(a) & set(b))
    except TypeError:
        return _unique_list([x for x in a if x in b])


def union(a: Any, b: Any) -> list[Any]:
    """Items in either (set order, as Ansible's)."""
    try:
        return list(set(a) | set(b))
    except TypeError:
        return _unique_list(list(a) + list(b))


def symmetric_difference(a: Any, b: Any) -> list[Any]:
    """Items in exactly one of them (set order, as Ansible's)."""
    try:
        return list(set(a) ^ set(b))
    except TypeError:
        both = intersect(a, b)
        return [x for x in union(a, b) if x not in both]


_LIST_MERGES = ("replace", "keep", "append", "prepend", "append_rp", "prepend_rp")


def _merge(x: Mapping[Any, Any], y: Mapping[Any, Any], recursive: bool, lists: str) -> Any:
    if x == {} or x == y:
        return dict(y)
    if y == {}:
        return x
    out = dict(x)
    for key, y_value in y.items():
        if key not in out:
            out[key] = y_value
            continue
        x_value = out[key]
        if isinstance(x_value, Mapping) and isinstance(y_value, Mapping):
            out[key] = _merge(x_value, y_value, recursive, lists) if recursive else y_value
        elif isinstance(x_value, list) and isinstance(y_value, list):
            merged = {
                "replace": y_value,
                "keep": x_value,
                "append": x_value + y_value,
                "prepend": y_value + x_value,
                "append_rp": [z for z in x_value if z not in y_value] + y_value,
                "prepend_rp": y_value + [z for z in x_value if z not in y_value],
            }
            out[key] = merged[lists]
        else:
            out[key] = y_value
    return out


def combine(*terms: Any, recursive: bool = False, list_merge: str = "replace") -> Any:
    """Merge mappings left to right (later wins); ``recursive`` merges nested mappings."""
    if list_merge not in _LIST_MERGES:
        raise FilterError(f"combine: list_merge must be one of {', '.join(_LIST_MERGES)}")
    dicts = flatten(list(terms), levels=1)
    for d in dicts:
        if not isinstance(d, Mapping):
            raise FilterError(f"combine: expects mappings, got {type(d).__name__}")
    if not dicts:
        return {}
    if len(dicts) == 1:
        return dicts[0]
    result = dicts[0]
    for d in dicts[1:]:
        result = _merge(result, d, recursive, list_merge)
    return result


def dict2items(value: Any, key_name: str = "key", value_name: str = "value") -> list[Any]:
    """A mapping as a list of ``{key: k, value: v}``."""
    if not isinstance(value, Mapping):
        raise FilterError(f"dict2items requires a dictionary, got {type(value).__name__}")
    return [{key_name: k, value_name: v} for k, v in value.items()]


def items2dict(value: Any, key_name: str = "key", value_name: str = "value") -> dict[Any, Any]:
    """The reverse of :func:`dict2items`."""
    if not _is_sequence(value):
        raise FilterError(f"items2dict requires a list, got {type(value).__name__}")
    try:
        return {item[key_name]: item[value_name] for item in value}
    except (KeyError, TypeError):
        raise FilterError(
            f"items2dict requires each item to be a mapping with {key_name!r} and {value_name!r}"
        ) from None


# -- tests -----------------------------------------------------------------------------


def test_match(
    value: Any, pattern: str = "", ignorecase: bool = False, multiline: bool = False
) -> bool:
    """Whether ``pattern`` matches at the start of the text."""
    return re.match(pattern, _text(value), _flags(ignorecase, multiline)) is not None


def test_search(
    value: Any, pattern: str = "", ignorecase: bool = False, multiline: bool = False
) -> bool:
    """Whether ``pattern`` matches anywhere in the text."""
    return re.search(pattern, _text(value), _flags(ignorecase, multiline)) is not None


def test_regex(
    value: Any,
    pattern: str = "",
    ignorecase: bool = False,
    multiline: bool = False,
    match_type: str = "search",
) -> bool:
    """``match`` or ``search`` (``match_type``) or ``fullmatch``."""
    func = {"search": re.search, "match": re.match, "fullmatch": re.fullmatch}.get(match_type)
    if func is None:
        raise FilterError(f"regex: match_type {match_type!r} is not supported")
    return func(pattern, _text(value), _flags(ignorecase, multiline)) is not None


_VERSION_PART = re.compile(r"(\d+|[a-z]+|\.)", re.I)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "=": lambda a, b: a == b, "eq": lambda a, b: a == b,
    "!=": lambda a, b: a != b, "<>": lambda a, b: a != b, "ne": lambda a, b: a != b,
    "<": lambda a, b: a < b, "lt": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "le": lambda a, b: a <= b,
    ">": lambda a, b: a > b, "gt": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "ge": lambda a, b: a >= b,
}  # fmt: skip


def _loose(version: str) -> list[int | str]:
    parts: list[int | str] = []
    for part in _VERSION_PART.split(version):
        if not part or part == ".":
            continue
        parts.append(int(part) if part.isdigit() else part)
    return parts


def test_version(
    value: Any,
    version: Any,
    operator: str = "eq",
    strict: bool | None = None,
    version_type: str | None = None,
) -> bool:
    """Compare versions as Ansible's default ("loose") comparison does.

    ``1.10 > 1.9``; letters compare as text (``1.0a < 1.0b``). Only the loose type is
    supported (``version_type`` ``loose`` or unset).
    """
    if strict or version_type not in (None, "loose"):
        raise FilterError("version: only the default (loose) comparison is supported")
    compare = _OPERATORS.get(operator)
    if compare is None:
        raise FilterError(f"version: invalid operator {operator!r}")
    if not value and value != 0:
        raise FilterError("version: input version value cannot be empty")
    if not version and version != 0:
        raise FilterError("version: version value cannot be empty")
    try:
        return compare(_loose(_text(value)), _loose(_text(version)))
    except TypeError:
        raise FilterError(
            f"version: cannot compare {_text(value)!r} with {_text(version)!r}"
        ) from None


FILTERS: dict[str, Callable[..., Any]] = {
    "to_json": to_json,
    "to_nice_json": to_nice_json,
    "to_yaml": to_yaml,
    "to_nice_yaml": to_nice_yaml,
    "from_json": from_json,
    "from_yaml": from_yaml,
    "b64encode": b64encode,
    "b64decode": b64decode,
    "bool": to_bool,
    "ternary": ternary,
    "quote": quote,
    "basename": basename,
    "dirname": dirname,
    "win_basename": win_basename,
    "mandatory": mandatory,
    "regex_replace": regex_replace,
    "regex_findall": regex_findall,
    "regex_search": regex_search,
    "regex_escape": regex_escape,
    "hash": hash_filter,
    "password_hash": password_hash,
    "flatten": flatten,
    "unique": unique,
    "difference": difference,
    "intersect": intersect,
    "union": union,
    "symmetric_difference": symmetric_difference,
    "combine": combine,
    "dict2items": dict2items,
    "items2dict": items2dict,
}
TESTS: dict[str, Callable[..., bool]] = {
    "match": test_match,
    "search": test_search,
    "regex": test_regex,
    "version": test_version,
    "version_compare": test_version,
}
