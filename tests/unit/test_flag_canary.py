"""A canary that ramps a feature flag instead of traffic weights."""

from __future__ import annotations

import json
from pathlib import Path

from cdlib.checks import CommandCheck
from cdlib.checks.suite import Suite
from cdlib.flags import AuditLog, LocalFileStore
from cdlib.release import CanaryStep, FlagCanary, History

FLAGS = {
    "flags": {
        "checkout": {
            "state": "ENABLED",
            "variants": {"new": True, "old": False},
            "defaultVariant": "old",
        }
    }
}


def _weights(path: Path) -> object:
    return json.loads(path.read_text())["flags"]["checkout"].get("targeting")


def test_flag_ramps_in_steps_and_rolls_back_on_failed_check(tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps(FLAGS))
    audit = AuditLog(tmp_path / "audit.jsonl")
    ok = FlagCanary(
        app="shop",
        version="checkout-v2",
        flag="checkout",
        variant="new",
        stores=LocalFileStore(flags),
        audit=audit,
        state_dir=str(tmp_path / "s"),
        steps=[CanaryStep(10), CanaryStep(50), 100],
        checks=Suite("ok", (CommandCheck(command="true"),)),
    )
    res = ok.run()
    assert res.ok, [r.msg for r in res.results]
    assert _weights(flags) == {"fractional": [["new", 100], ["old", 0]]}
    assert [e.action for e in audit.entries()] == ["ramp 10%", "ramp 50%", "ramp 100%"]

    flags.write_text(json.dumps(FLAGS))
    bad = FlagCanary(
        app="shop",
        version="checkout-v3",
        flag="checkout",
        variant="new",
        stores=LocalFileStore(flags),
        state_dir=str(tmp_path / "s"),
        steps=[CanaryStep(10), 50, 100],
        checks=Suite("bad", (CommandCheck(command="false"),)),
    )
    res = bad.run()
    assert not res.ok
    steps = [r.task for r in res.results]
    assert steps[-1] == "roll back: flag checkout -> 0%"
    assert "flag checkout -> 50% of users" not in steps
    assert _weights(flags) == {"fractional": [["new", 0], ["old", 100]]}
    assert History("shop", state_dir=str(tmp_path / "s")).latest().outcome == "rolled_back"  # type: ignore[union-attr]

    # check mode predicts and writes nothing
    flags.write_text(json.dumps(FLAGS))
    checked = ok.run(check=True)
    assert checked.ok and json.loads(flags.read_text()) == FLAGS
