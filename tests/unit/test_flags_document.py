"""Parsing and validation of flag files: clear errors naming file:line, flag and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdlib.flags.document import load_document, parse_document
from cdlib.flags.errors import FlagFileError, FlagValidationError
from cdlib.flags.validate import check_document, validate_document

GOOD_YAML = """\
flags:
  new-greeting:
    state: ENABLED
    variants:
      "on": true
      "off": false
    defaultVariant: "off"
"""


def errors(text: str, source: str = "f.json") -> list[str]:
    doc = parse_document(text, source)
    return [str(p) for p in validate_document(doc) if p.severity == "error"]


def test_good_yaml_and_json_are_equal(tmp_path: Path) -> None:
    y = tmp_path / "flags.yaml"
    y.write_text(GOOD_YAML)
    j = tmp_path / "flags.json"
    j.write_text(json.dumps(load_document(y).data))
    assert load_document(y).data == load_document(j).data
    assert check_document(load_document(y)) == []


def test_invalid_json_names_file_and_line() -> None:
    with pytest.raises(FlagFileError, match=r"^bad\.json:3: invalid JSON"):
        parse_document('{\n "flags": {\n  "a": ,\n }\n}', "bad.json")


def test_invalid_yaml_names_file_and_line() -> None:
    with pytest.raises(FlagFileError, match=r"^bad\.yaml:3: invalid YAML"):
        parse_document("flags:\n  a:\n    state: x: y\n", "bad.yaml")


def test_not_an_object() -> None:
    with pytest.raises(FlagFileError, match="must be an object"):
        parse_document("[1, 2]", "x.json")
    with pytest.raises(FlagFileError, match="empty"):
        parse_document("", "x.yaml")


def test_missing_file() -> None:
    with pytest.raises(FlagFileError, match="cannot read flag file"):
        load_document("/nonexistent/flags.json")


def test_errors_name_line_flag_and_field() -> None:
    text = """{
  "flags": {
    "a": {
      "state": "ON",
      "variants": {"x": true, "y": "no"},
      "defaultVariant": "z",
      "targetting": {}
    }
  }
}"""
    found = errors(text)
    assert any(e.startswith("f.json:4: error: flag 'a', field 'state'") for e in found), found
    assert any(
        "f.json:5: error: flag 'a', field 'variants': all variants must have" in e for e in found
    )
    assert any(
        "f.json:6: error: flag 'a', field 'defaultVariant': 'z' is not one" in e for e in found
    )
    assert any("field 'targetting': unknown field (did you mean 'targeting'?)" in e for e in found)


def test_yaml_unquoted_on_off_is_explained() -> None:
    text = GOOD_YAML.replace('"on"', "on").replace('"off": false', "off: false")
    found = errors(text, "flags.yaml")
    assert any("quote on/off/yes/no in YAML" in e and "flags.yaml:4" in e for e in found), found


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"flags": []}', "array form"),
        ("{}", "no 'flags' object"),
        ('{"flags": {"a": {"variants": {"x": 1}}}}', "'state' is required"),
        ('{"flags": {"a": {"state": "ENABLED"}}}', "'variants' is required"),
        ('{"flags": {"a": {"state": "ENABLED", "variants": {}}}}', "non-empty object"),
        ('{"flags": {"a": {"state": "ENABLED", "variants": {"x": [1]}}}}', "got array"),
        ('{"flags": {"a": {"state": "ENABLED", "variants": {"x": 9007199254740993}}}}', "safe"),
        (
            '{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}, "targeting": "x"}}}',
            "JsonLogic object",
        ),
        (
            '{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}, "metadata": {"o": []}}}}',
            "metadata values",
        ),
        ('{"flags": {}, "metadata": {"flagSetId": 3}}', "'flagSetId' must be a string"),
    ],
)
def test_schema_rules(text: str, needle: str) -> None:
    found = errors(text)
    assert any(needle in e for e in found), found
    with pytest.raises(FlagValidationError, match="invalid flag configuration"):
        check_document(parse_document(text, "f.json"))


def test_null_or_missing_default_variant_is_valid() -> None:
    for extra in ('"defaultVariant": null,', ""):
        text = f'{{"flags": {{"a": {{"state": "ENABLED", {extra} "variants": {{"x": 1}}}}}}}}'
        assert errors(text) == []


def test_targeting_problems_are_warnings() -> None:
    text = json.dumps(
        {
            "flags": {
                "a": {
                    "state": "ENABLED",
                    "variants": {"on": True, "off": False},
                    "defaultVariant": "off",
                    "targeting": {
                        "if": [{"$ref": "nope"}, {"fractional": [["on", 1.5], ["of", 50]]}]
                    },
                }
            }
        }
    )
    problems = validate_document(parse_document(text, "f.json"))
    assert {p.severity for p in problems} == {"warning"}
    messages = " | ".join(p.message for p in problems)
    assert "unknown evaluator 'nope'" in messages
    assert "1.5 must be a whole number" in messages
    assert "unknown variant 'of'" in messages
