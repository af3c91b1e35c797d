"""Flag evaluation through flagd's reference evaluator (``openfeature-flagd-core``).

cdlib does not evaluate targeting itself: :class:`FlagEvaluator` loads a document
into :class:`FlagdCore` and turns its answers and errors into OpenFeature's
evaluation details, the way an OpenFeature client would report them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode, OpenFeatureError
from openfeature.flag_evaluation import FlagResolutionDetails, Reason

from cdlib.flags.document import FlagDocument
from cdlib.flags.validate import variant_kind

FlagType = Literal["boolean", "string", "integer", "float", "object"]
FLAG_TYPES: tuple[FlagType, ...] = get_args(FlagType)

__all__ = [
    "FLAG_TYPES",
    "Evaluation",
    "FlagEvaluator",
    "FlagType",
    "evaluate",
    "infer_type",
    "make_context",
    "zero_value",
]

_ZERO: dict[FlagType, Any] = {
    "boolean": False,
    "string": "",
    "integer": 0,
    "float": 0.0,
    "object": {},
}


@dataclass(frozen=True)
class Evaluation:
    """OpenFeature evaluation details of one flag."""

    flag_key: str
    value: Any
    reason: str
    variant: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    flag_metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The details as one JSON object with OpenFeature's field names."""
        return {
            "flagKey": self.flag_key,
            "value": self.value,
            "variant": self.variant,
            "reason": self.reason,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "flagMetadata": dict(self.flag_metadata),
        }


def zero_value(flag_type: FlagType) -> Any:
    """The code default used when the caller gives none: false, "", 0, 0.0 or {}."""
    value = _ZERO[flag_type]
    return {} if flag_type == "object" else value


def infer_type(doc: FlagDocument, key: str) -> FlagType:
    """The evaluation type a flag's variants suggest (string for an unknown flag)."""
    flag = doc.flags.get(key)
    variants = flag.get("variants") if isinstance(flag, dict) else None
    if not isinstance(variants, dict) or not variants:
        return "string"
    kinds = {variant_kind(v) for v in variants.values()}
    if kinds == {"number"}:
        all_int = all(isinstance(v, int) for v in variants.values())
        return "integer" if all_int else "float"
    kind = kinds.pop() if len(kinds) == 1 else None
    return cast(FlagType, kind) if kind in ("boolean", "string", "object") else "string"


def make_context(context: Mapping[str, Any] | None) -> EvaluationContext:
    """An OpenFeature context from a JSON object; ``targetingKey`` becomes the targeting key.

    A ``targetingKey`` that is not a string is passed on unchanged, as flagd receives it: the
    reference evaluator then treats it as missing for ``fractional`` (which falls back to the
    default variant) while ``{"var": "targetingKey"}`` still sees the value as given.
    """
    attributes = dict(context or {})
    # Not coerced: str(42) == "42" would bucket a user flagd leaves unbucketed.
    targeting_key: Any = attributes.pop("targetingKey", None)
    return EvaluationContext(targeting_key=targeting_key, attributes=attributes)


class FlagEvaluator:
    """A document loaded into flagd's reference evaluator, ready to evaluate flags."""

    def __init__(self, doc: FlagDocument) -> None:
        self.doc = doc
        self._core = FlagdCore()
        # A JSON string, not the dict: the core mutates the dicts it is given.
        self._core.set_flags(json.dumps(doc.data))

    def evaluate(
        self,
        key: str,
        default: Any = None,
        flag_type: FlagType | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """Evaluate flag ``key``; errors come back as details, never as exceptions."""
        flag_type = flag_type or infer_type(self.doc, key)
        if default is None:
            default = zero_value(flag_type)
        ctx = make_context(context)
        resolve: Callable[..., Any] = getattr(self._core, f"resolve_{flag_type}_value")
        try:
            details = cast(FlagResolutionDetails[Any], resolve(key, default, ctx))
        except OpenFeatureError as exc:
            return Evaluation(
                key,
                default,
                Reason.ERROR.value,
                error_code=exc.error_code.value,
                error_message=exc.error_message,
            )
        except Exception as exc:  # the SDK maps anything else to GENERAL, so do we
            return Evaluation(
                key,
                default,
                Reason.ERROR.value,
                error_code=ErrorCode.GENERAL.value,
                error_message=str(exc) or type(exc).__name__,
            )
        reason = details.reason.value if isinstance(details.reason, Reason) else details.reason
        return Evaluation(
            key,
            details.value,
            str(reason or Reason.UNKNOWN.value),
            variant=details.variant,
            error_code=details.error_code.value if details.error_code else None,
            error_message=details.error_message,
            flag_metadata=dict(details.flag_metadata or {}),
        )


def evaluate(
    doc: FlagDocument,
    key: str,
    default: Any = None,
    flag_type: FlagType | None = None,
    context: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate one flag of ``doc`` (see :meth:`FlagEvaluator.evaluate`)."""
    return FlagEvaluator(doc).evaluate(key, default, flag_type, context)
