"""Pure flag changes: state, default variant, rollout ramp, kill switch."""

from __future__ import annotations

import pytest

from cdlib.flags.document import parse_document
from cdlib.flags.errors import FlagChangeError, UnknownFlagError
from cdlib.flags.evaluate import FlagEvaluator
from cdlib.flags.mutate import (
    kill_switch,
    rollout_weights,
    set_default_variant,
    set_rollout,
    set_state,
)

DOC = parse_document(
    """{
  "flags": {
    "checkout": {
      "state": "ENABLED",
      "variants": {"new": true, "old": false},
      "defaultVariant": "old",
      "targeting": {"fractional": [{"var": "userId"}, ["new", 10], ["old", 90]]}
    },
    "banner": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off"
    },
    "colour": {"state": "ENABLED", "variants": {"red": "r", "blue": "b"}, "defaultVariant": "red"}
  }
}""",
    "flags.json",
)


def share_on(doc: object, flag: str, users: range) -> set[int]:
    ev = FlagEvaluator(doc)  # type: ignore[arg-type]
    return {u for u in users if ev.evaluate(flag, False, "boolean", {"userId": f"u{u}"}).value}


def test_set_state_and_default_variant() -> None:
    new, changes = set_state(DOC, "banner", "disabled")
    assert new.flag("banner")["state"] == "DISABLED"
    assert [str(c) for c in changes] == ['banner.state: "ENABLED" -> "DISABLED"']
    assert DOC.flag("banner")["state"] == "ENABLED"  # the input is never changed
    again, none = set_state(new, "banner", "DISABLED")
    assert none == [] and again is new
    new, changes = set_default_variant(DOC, "banner", "on")
    assert new.flag("banner")["defaultVariant"] == "on" and len(changes) == 1


def test_bad_changes_are_refused() -> None:
    with pytest.raises(FlagChangeError, match="no variant 'maybe'"):
        set_default_variant(DOC, "banner", "maybe")
    with pytest.raises(UnknownFlagError, match=r"flags\.json: flag 'nope' is not defined"):
        set_state(DOC, "nope", "ENABLED")
    with pytest.raises(FlagChangeError, match="must be ENABLED or DISABLED"):
        set_state(DOC, "banner", "ON")
    with pytest.raises(FlagChangeError, match=r"0\.\.100"):
        rollout_weights(DOC, "checkout", 101)
    with pytest.raises(FlagChangeError, match="add up to 0"):
        set_rollout(DOC, "checkout", {"new": 0, "old": 0})
    with pytest.raises(FlagChangeError, match="name the variant"):
        rollout_weights(DOC, "colour", 50)


def test_ramp_keeps_users_in_their_bucket() -> None:
    users = range(2000)
    at10 = share_on(DOC, "checkout", users)
    doc50, changes = set_rollout(DOC, "checkout", rollout_weights(DOC, "checkout", 50))
    assert doc50.flag("checkout")["targeting"] == {
        "fractional": [{"var": "userId"}, ["new", 50], ["old", 50]]
    }
    assert changes[0].field == "targeting"
    at50 = share_on(doc50, "checkout", users)
    doc100, _ = set_rollout(doc50, "checkout", rollout_weights(doc50, "checkout", 100))
    at100 = share_on(doc100, "checkout", users)
    assert at10 <= at50 <= at100  # nobody loses the feature while it grows
    assert 100 < len(at10) < 300 and 850 < len(at50) < 1150 and len(at100) == 2000


def test_ramp_creates_a_rule_for_an_untargeted_flag() -> None:
    new, _ = set_rollout(DOC, "banner", rollout_weights(DOC, "banner", 25))
    assert new.flag("banner")["targeting"] == {"fractional": [["on", 25], ["off", 75]]}
    ev = FlagEvaluator(new)
    result = ev.evaluate("banner", False, "boolean", {"targetingKey": "someone"})
    assert result.reason == "TARGETING_MATCH"


def test_kill_switch_serves_false_and_drops_targeting() -> None:
    new, changes = kill_switch(DOC, "checkout")
    flag = new.flag("checkout")
    assert flag["defaultVariant"] == "old" and "targeting" not in flag
    removed = next(c for c in changes if c.field == "targeting")
    assert removed.old == DOC.flag("checkout")["targeting"] and removed.new is None
    assert share_on(new, "checkout", range(200)) == set()
    with pytest.raises(FlagChangeError, match="not a boolean flag"):
        kill_switch(DOC, "colour")
    blue, _ = kill_switch(DOC, "colour", "blue")
    assert blue.flag("colour")["defaultVariant"] == "blue"


def test_flagd_context_properties_reach_targeting() -> None:
    doc = parse_document(
        """{"flags": {"self-aware": {
            "state": "ENABLED",
            "variants": {"me": "me", "past": "past", "other": "other"},
            "defaultVariant": "other",
            "targeting": {"if": [
                {"==": [{"var": "$flagd.flagKey"}, "nope"]}, "other",
                {"<": [{"var": "$flagd.timestamp"}, 1000]}, "past",
                {"==": [{"var": "$flagd.flagKey"}, "self-aware"]}, "me",
                null
            ]}
        }}}""",
        "ctx.json",
    )
    result = FlagEvaluator(doc).evaluate("self-aware", "x", "string")
    assert (result.value, result.reason) == ("me", "TARGETING_MATCH")
