"""flagd's evaluator test kit, run against cdlib's evaluation path.

The kit's Gherkin features are read by the small parser below (scenarios,
outlines, tagged example tables, data tables). Rows tagged ``@fractional-v1`` or
``@fractional-v2`` are skipped: the reference evaluator implements v3 bucketing,
whose rows are in ``fractional-v3.feature``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cdlib.flags.document import load_document
from cdlib.flags.evaluate import FlagEvaluator, FlagType
from cdlib.flags.validate import check_document

SKIPPED_TAGS = {"@fractional-v1", "@fractional-v2"}


def shared_dir() -> Path:
    """shared/ beside the repository (CI copies it there), or $CDLIB_SHARED_DIR."""
    env = os.environ.get("CDLIB_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared"


KIT = shared_dir() / "conformance" / "flagd-evaluator"


# -- a small Gherkin reader -----------------------------------------------------
@dataclass
class Step:
    text: str
    table: list[list[str]] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    tags: set[str]
    steps: list[Step]


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def parse_feature(path: Path) -> list[Scenario]:
    """Expand one feature file into concrete scenarios (outline rows substituted)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    feature_tags: set[str] = set()
    pending_tags: set[str] = set()
    background: list[Step] = []
    scenarios: list[Scenario] = []
    current: dict[str, Any] | None = None  # name, tags, steps, outline, examples
    target: list[Step] | None = None
    examples: dict[str, Any] | None = None

    def flush() -> None:
        if current is None:
            return
        base_tags = feature_tags | current["tags"]
        if not current["outline"]:
            scenarios.append(Scenario(current["name"], base_tags, current["steps"]))
            return
        for ex in current["examples"]:
            header, *rows = ex["rows"]
            for n, row in enumerate(rows):
                values = dict(zip(header, row, strict=True))

                def sub(s: str, values: dict[str, str] = values) -> str:
                    return re.sub(r"<([^>]+)>", lambda m: values.get(m.group(1), m.group(0)), s)

                steps = [
                    Step(sub(s.text), [[sub(c) for c in r] for r in s.table])
                    for s in current["steps"]
                ]
                scenarios.append(
                    Scenario(
                        f"{current['name']} [{ex['name']} #{n + 1}]", base_tags | ex["tags"], steps
                    )
                )

    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            pending_tags |= set(line.split())
            continue
        keyword, _, rest = line.partition(":")
        if line.startswith("Feature:"):
            feature_tags, pending_tags = pending_tags, set()
        elif line.startswith("Background:"):
            target, examples = background, None
        elif keyword in ("Scenario", "Scenario Outline", "Example"):
            flush()
            current = {
                "name": rest.strip(),
                "tags": pending_tags,
                "steps": list(background),
                "outline": keyword == "Scenario Outline",
                "examples": [],
            }
            pending_tags, target, examples = set(), current["steps"], None
        elif keyword == "Examples" and current is not None:
            examples = {"name": rest.strip() or "examples", "tags": pending_tags, "rows": []}
            current["examples"].append(examples)
            pending_tags, target = set(), None
        elif line.startswith("|"):
            if examples is not None:
                examples["rows"].append(_cells(line))
            elif target:
                target[-1].table.append(_cells(line))
        elif target is not None:
            step = re.sub(r"^(Given|When|Then|And|But)\s+", "", line)
            target.append(Step(step))
    flush()
    return scenarios


def all_scenarios() -> list[Any]:
    params = []
    for path in sorted((KIT / "gherkin").glob("*.feature")):
        for sc in parse_feature(path):
            if sc.tags & SKIPPED_TAGS and "@fractional-v3" not in sc.tags:
                continue
            params.append(pytest.param(sc, id=f"{path.stem}: {sc.name}"))
    return params


# -- the step definitions -----------------------------------------------------
_TYPES: dict[str, FlagType] = {
    "Boolean": "boolean",
    "String": "string",
    "Integer": "integer",
    "Float": "float",
    "Object": "object",
}


def typed(kind: str, text: str) -> Any:
    """A Gherkin string as a value of OpenFeature type ``kind``."""
    if kind == "Boolean":
        return text == "true"
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Object":
        return json.loads(text.replace('\\"', '"'))
    return text


@pytest.fixture(scope="module")
def evaluator() -> FlagEvaluator:
    doc = load_document(KIT / "flags" / "testkit-flags.json")
    check_document(doc)  # the kit's file passes cdlib's validation (warnings allowed)
    return FlagEvaluator(doc)


@pytest.mark.parametrize("scenario", all_scenarios())
def test_flagd_evaluator_kit(scenario: Scenario, evaluator: FlagEvaluator) -> None:
    kind = "String"
    key = ""
    fallback: Any = None
    context: dict[str, Any] = {}
    result = None
    checked = 0
    for step in scenario.steps:
        text = step.text
        if text == "an evaluator":
            continue
        if m := re.fullmatch(
            r'an? (\w+)-flag with key "([^"]*)" and a fallback value "(.*)"', text
        ):
            kind, key, fallback = m.group(1), m.group(2), typed(m.group(1), m.group(3))
        elif m := re.fullmatch(r'a context containing a targeting key with value "(.*)"', text):
            context["targetingKey"] = m.group(1)
        elif m := re.fullmatch(
            r'a context containing a key "([^"]*)", with type "(\w+)" and with value "(.*)"', text
        ):
            context[m.group(1)] = typed(m.group(2), m.group(3))
        elif m := re.fullmatch(
            r'a context containing a nested property with outer key "([^"]*)" and inner key '
            r'"([^"]*)", with value "(.*)"',
            text,
        ):
            context.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
        elif text == "the flag was evaluated with details":
            result = evaluator.evaluate(key, fallback, _TYPES[kind], context)
        elif m := re.fullmatch(r'the resolved details value should be "(.*)"', text):
            assert result is not None
            assert result.value == typed(kind, m.group(1)), result
            checked += 1
        elif m := re.fullmatch(r'the reason should be "(\w+)"', text):
            assert result is not None
            assert result.reason == m.group(1), result
            checked += 1
        elif m := re.fullmatch(r'the error-code should be "(\w*)"', text):
            assert result is not None
            assert (result.error_code or "") == m.group(1), result
            checked += 1
        elif m := re.fullmatch(r'the variant should be "(.*)"', text):
            assert result is not None
            assert result.variant == m.group(1), result
            checked += 1
        elif text == "the resolved metadata is empty":
            assert result is not None
            assert dict(result.flag_metadata) == {}, result
            checked += 1
        elif text == "the resolved metadata should contain":
            assert result is not None
            header, *rows = step.table
            for row in rows:
                entry = dict(zip(header, row, strict=True))
                expected = typed(entry["metadata_type"], entry["value"])
                assert result.flag_metadata.get(entry["key"]) == expected, result
            checked += 1
        else:
            raise AssertionError(f"unknown step: {text!r}")
    assert checked, "scenario made no assertion"


def test_kit_is_complete() -> None:
    """Guard against a silently empty run: the kit must yield its scenarios."""
    names = [p.id for p in all_scenarios()]
    assert len(names) > 80
    assert any(n.startswith("fractional-v3") for n in names)
    assert not any("v1 #" in n or "v2 #" in n for n in names)
