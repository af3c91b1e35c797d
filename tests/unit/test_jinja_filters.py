"""Ansible's common filters and tests: cdlib's give Ansible's outputs (ansible-core as oracle).

Each expression is evaluated by cdlib's sandboxed environment and by ansible-core's own
Templar in this process, and the two values must be equal. ``password_hash`` is compared
with glibc's crypt(3) instead: ansible-core needs passlib for it, and passlib produces
crypt's format (``$6$rounds=656000$salt$...``, Ansible's default rounds).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import pytest

from cdlib import register_filter, register_test
from cdlib.jinja_filters import OMIT
from cdlib.jinja_sandbox import sandboxed_environment

VARS: dict[str, Any] = {
    "d": {"a": 1, "b": [1, 2], "c": {"x": "é", "y": None}},
    "d2": {"b": [3], "c": {"z": True}, "e": "new"},
    "l": [3, 1, 2, 1, "a", "A", "b"],
    "nested": [1, [2, [3, [4, None]]], "null", None, ["x"]],
    "lod": [{"k": 1}, {"k": 1}, {"k": 2}],
    "s": "Hello World 123, hello again 456",
    "path": "/etc/app/conf.d/site.conf",
    "multi": "a: 1\nlist: [x, y]\nnested: {k: v}\n",
    "js": '{"a": [1, 2, {"b": null}], "t": true}',
    "shell": "it's a $HOME; rm -rf /",
    "items": [{"key": "a", "value": 1}, {"key": "b", "value": [2]}],
    "named": [{"n": "a", "v": 1}],
    "yes": "yes",
    "mline": "multi\nline text: é\n",
    # Patterns travel as variables: Ansible's templar keeps backslashes in template
    # string literals where Jinja2 unescapes them, a difference of the literal, not the filter.
    "num": r"\d+",
    "digit": r"\d",
    "num_group": r"(\d+)",
    "bracket_ref": r"<\1>",
    "two_words": r"(?P<w>\w+) (\w+)",
    "ref_w": r"\g<w>",
    "ref_2": r"\2",
    "versions": ["1.10", "1.9", "2.0.0a", "2.0.0b"],
}

EXPRESSIONS = [
    "d | to_json",
    "d | to_json(sort_keys=True, indent=2)",
    "d | to_nice_json",
    "d | to_nice_json(indent=2)",
    "d | to_yaml",
    "d | to_nice_yaml",
    "l | to_yaml",
    "mline | to_nice_yaml",
    "mline | to_yaml",
    "[mline, 'x: y', '- z', 'yes', '012'] | to_yaml",
    "[d, l] | to_nice_yaml(indent=2)",
    "js | from_json",
    "multi | from_yaml",
    "'é✓ text' | b64encode",
    "'w6ninJMgdGV4dA==' | b64decode",
    "'?>?' | b64encode(urlsafe=True)",
    "[yes, 'On', 'FALSE', 'no', 1, 0, 'true', True, False, '1', '0'] | map('bool') | list",
    "s | regex_replace(num_group, bracket_ref)",
    "s | regex_replace('hello', 'bye', ignorecase=True)",
    "s | regex_replace(digit, '#', count=2)",
    "s | regex_search(num)",
    "s | regex_search(two_words, ref_w, ref_2)",
    "s | regex_search('nomatch')",
    "s | regex_findall(num)",
    "s | regex_findall('(h)ello', ignorecase=True)",
    "'a.b*c' | regex_escape",
    "d | combine(d2)",
    "d | combine(d2, recursive=True)",
    "d | combine(d2, recursive=True, list_merge='append')",
    "[d, d2, {'a': 9}] | combine",
    "{'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='append_rp')",
    "{'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='prepend_rp')",
    "True | ternary('yes', 'no')",
    "0 | ternary('yes', 'no')",
    "None | ternary('t', 'f', 'n')",
    "shell | quote",
    "'' | quote",
    "'hello' | hash",
    "'hello' | hash('sha256')",
    "'hello' | hash('md5')",
    "path | basename",
    "path | dirname",
    "'noslash' | dirname",
    "d | mandatory",
    "d | dict2items",
    "d | dict2items(key_name='n', value_name='v')",
    "items | items2dict",
    "named | items2dict(key_name='n', value_name='v')",
    "nested | flatten",
    "nested | flatten(levels=1)",
    "nested | flatten(skip_nulls=False)",
    "l | unique",
    "lod | unique",
    "[1, 2, 3, 4] | difference([2, 4, 5])",
    "[1, 2, 3] | union([3, 4, 1])",
    "l | difference(['a', 1])",
    "lod | difference([{'k': 2}])",
    "lod | union([{'k': 3}])",
    "[1, 2, 3] | intersect([2, 3, 4])",
    "[1, 2, 3] | symmetric_difference([2, 3, 4])",
    "undefined_name | default('dflt')",
    "'' | default('dflt', true)",
    "'x' is match('x')",
    "s is match('World')",
    "s is search('World')",
    "s is search('world', ignorecase=True)",
    "'abc' is regex('b')",
    "d is defined",
    "undefined_name is defined",
    "undefined_name is undefined",
    "'1.10' is version('1.9', '>')",
    "'1.10' is version('1.9', 'lt')",
    "'2.0.0a' is version('2.0.0b', '<')",
    "'2.0' is version('2.0', '==')",
    "'2.0' is version('2.0.0', 'ge')",
    "'1.2.3' is version('1.2', 'ne')",
    "versions | select('version', '1.9', 'gt') | list",
]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ansible") is None, reason="ansible-core is not installed"
)


def _ansible(expr: str) -> Any:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    templar = Templar(loader=DataLoader(), variables=VARS)
    return templar.template(trust_as_template("{{ " + expr + " }}"))


def _cdlib(expr: str) -> Any:
    env = sandboxed_environment()
    return env.compile_expression(expr, undefined_to_none=False)(**VARS)


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_filter_matches_ansible(expr: str) -> None:
    expected = _ansible(expr)
    got = _cdlib(expr)
    assert got == expected
    assert type(got) is type(expected) or isinstance(expected, type(got))


FILTER_NAMES = [
    "to_json",
    "to_nice_json",
    "to_yaml",
    "to_nice_yaml",
    "from_json",
    "from_yaml",
    "b64encode",
    "b64decode",
    "bool",
    "regex_replace",
    "regex_search",
    "regex_findall",
    "combine",
    "ternary",
    "quote",
    "hash",
    "password_hash",
    "basename",
    "dirname",
    "mandatory",
    "dict2items",
    "items2dict",
    "flatten",
    "unique",
    "difference",
    "union",
    "default",
]


def test_every_listed_filter_is_exercised() -> None:
    text = " ".join(EXPRESSIONS)
    used = {f for f in FILTER_NAMES if f"| {f}" in text or f"map('{f}')" in text}
    missing = [f for f in FILTER_NAMES if f != "password_hash" and f not in used]
    missing += [t for t in ("match", "search", "defined", "version") if f"is {t}" not in text]
    assert not missing
    env = sandboxed_environment()
    assert set(FILTER_NAMES) <= set(env.filters)


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        ("'pw', 'sha512', 'saltsalt'", "$6$rounds=656000$saltsalt"),
        (
            "'pässwörd with spaces', 'sha512', 'abcdefghijklmnopqrst'",
            "$6$rounds=656000$abcdefghijklmnop",
        ),
        ("'x' * 70, 'sha512', 'ab', rounds=5000", "$6$rounds=5000$ab"),
        ("'pw', 'sha256', 'salt', rounds=1000", "$5$rounds=1000$salt"),
    ],
)
def test_password_hash_equals_crypt(args: str, setting: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    expr = f"({args.split(',')[0]}) | password_hash({', '.join(args.split(',')[1:])})"
    password = sandboxed_environment().compile_expression(args.split(",")[0])()
    assert _cdlib(expr) == crypt.crypt(password, setting)


def test_password_hash_random_salt_differs_and_verifies() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    a, b = _cdlib("'pw' | password_hash"), _cdlib("'pw' | password_hash")
    assert a != b and a.startswith("$6$rounds=656000$") and crypt.crypt("pw", a) == a


def test_mandatory_names_the_variable() -> None:
    from jinja2.exceptions import FilterArgumentError

    with pytest.raises(FilterArgumentError, match="Mandatory variable 'nope' not defined"):
        _cdlib("nope | mandatory")
    with pytest.raises(FilterArgumentError, match="custom message"):
        _cdlib("nope | mandatory('custom message')")


def test_default_omit_is_the_placeholder() -> None:
    assert _cdlib("undefined_name | default(omit)") == OMIT


def test_playbook_registered_filter_and_test_reach_every_environment() -> None:
    before = sandboxed_environment()
    register_filter("shout_for_test", lambda v: str(v).upper() + "!")
    register_test("even_for_test", lambda v: v % 2 == 0)
    after = sandboxed_environment()
    for env in (before, after):
        assert env.from_string("{{ 'hi' | shout_for_test }}").render() == "HI!"
        assert env.from_string("{{ 4 is even_for_test }}").render() == "True"
    with pytest.raises(ValueError, match="identifier"):
        register_filter("not a name", str)


def test_an_option_rendered_to_omit_takes_its_default() -> None:
    from cdlib import tasks
    from cdlib.engine.templating import Templar

    task = tasks.file("/tmp/x", content="c", owner="{{ wanted | default(omit) }}")
    prepared = task.prepare({}, Templar())
    assert prepared.owner is None  # the default, not the placeholder text
    assert task.prepare({"wanted": "app"}, Templar()).owner == "app"
