"""Evaluation contexts reach flagd's reference evaluator as given (no coercion)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from cdlib.flags.document import parse_document
from cdlib.flags.evaluate import FlagEvaluator

DOC: dict[str, Any] = {
    "flags": {
        # Everyone with a (string) targeting key lands in "on"; without one, the default.
        "split": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 100], ["off", 0]]},
        },
        "exact": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"===": [{"var": "targetingKey"}, 42]}, "on", "off"]},
        },
    }
}


@pytest.fixture
def evaluator() -> FlagEvaluator:
    return FlagEvaluator(parse_document(json.dumps(DOC), "flags.json"))


def _reference(key: str, context: EvaluationContext) -> Any:
    core = FlagdCore()
    core.set_flags(json.dumps(DOC))
    return core.resolve_boolean_value(key, False, context)


@pytest.mark.parametrize("bad_key", [42, 4.5, True, ["a"], {"id": "a"}])
def test_non_string_targeting_key_is_missing_for_fractional(
    evaluator: FlagEvaluator, bad_key: Any
) -> None:
    got = evaluator.evaluate("split", False, "boolean", {"targetingKey": bad_key})
    # flagd's reference evaluator, given no targeting key, answers the same way.
    ref = _reference("split", EvaluationContext())
    assert (got.value, got.variant) == (ref.value, ref.variant) == (False, "off")


def test_string_targeting_key_is_bucketed(evaluator: FlagEvaluator) -> None:
    got = evaluator.evaluate("split", False, "boolean", {"targetingKey": "42"})
    assert (got.value, got.variant) == (True, "on")


def test_targeting_key_keeps_its_type_in_rules(evaluator: FlagEvaluator) -> None:
    number = evaluator.evaluate("exact", False, "boolean", {"targetingKey": 42})
    text = evaluator.evaluate("exact", False, "boolean", {"targetingKey": "42"})
    assert (number.variant, text.variant) == ("on", "off")
