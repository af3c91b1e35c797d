"""Local file store, audit log, management operations, lint and the CLI."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from cdlib.cli.flags import run
from cdlib.flags.audit import AuditLog
from cdlib.flags.document import FlagDocument, load_document, parse_document
from cdlib.flags.errors import FlagChangeError, FlagsError, FlagSourceError, FlagValidationError
from cdlib.flags.lint import lint_document
from cdlib.flags.manage import PartialChangeError, kill, ramp, set_flag
from cdlib.flags.stores import LocalFileStore

FLAGS = {
    "flags": {
        "checkout": {
            "state": "ENABLED",
            "variants": {"new": True, "old": False},
            "defaultVariant": "old",
            "metadata": {"owner": "team-pay", "expires": "2026-03-01"},
        },
        "banner": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
        },
    }
}


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    p = tmp_path / "flags.json"
    p.write_text(json.dumps(FLAGS, indent=2))
    p.chmod(0o640)
    return p


def test_store_writes_atomically_and_keeps_mode(flag_file: Path) -> None:
    store = LocalFileStore(flag_file)
    inode = flag_file.stat().st_ino
    result = set_flag(store, "banner", state="DISABLED")
    assert result.changed
    assert load_document(flag_file).flag("banner")["state"] == "DISABLED"
    assert flag_file.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert flag_file.stat().st_mode & 0o777 == 0o640
    assert os.listdir(flag_file.parent) == ["flags.json"]  # no temp file left


def test_invalid_document_is_never_written(flag_file: Path) -> None:
    before = flag_file.read_bytes()
    bad = parse_document('{"flags": {"a": {"state": "ON", "variants": {"x": 1}}}}', "new")
    with pytest.raises(FlagValidationError, match="field 'state'"):
        LocalFileStore(flag_file).write(bad)
    assert flag_file.read_bytes() == before
    assert os.listdir(flag_file.parent) == ["flags.json"]


def test_all_stores_are_checked_before_any_is_written(tmp_path: Path, flag_file: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"flags": {"banner": FLAGS["flags"]["banner"]}}))
    before = flag_file.read_bytes()
    with pytest.raises(Exception, match="checkout"):
        ramp([LocalFileStore(flag_file), LocalFileStore(other)], "checkout", 10)
    assert flag_file.read_bytes() == before  # the first store was not written either


def _killed(path: Path) -> bool:
    flag = load_document(path).flag("checkout")
    return flag["defaultVariant"] == "old" and "targeting" not in flag


def _three(tmp_path: Path, flag_file: Path) -> list[LocalFileStore]:
    ramp(LocalFileStore(flag_file), "checkout", 50)
    other = tmp_path / "other.json"
    other.write_bytes(flag_file.read_bytes())
    gone = tmp_path / "gone.json"
    return [LocalFileStore(flag_file), LocalFileStore(gone), LocalFileStore(other)]


def test_kill_and_rollback_write_every_reachable_store(tmp_path: Path, flag_file: Path) -> None:
    stores = _three(tmp_path, flag_file)
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(PartialChangeError) as info:
        kill(stores, "checkout", audit=log)
    assert _killed(stores[0].path) and _killed(stores[2].path)
    assert list(info.value.result.failed) == [stores[1].name]
    assert f"reached 2 of 3 store(s); not done on:\n  {stores[1].name}: " in str(info.value)
    assert {e.target for e in log.entries()} == {stores[0].name, stores[2].name}

    for s in (stores[0], stores[2]):
        ramp(s, "checkout", 50)
    with pytest.raises(PartialChangeError, match="ramp 0%"):
        ramp(stores, "checkout", 0)  # a rollback
    for s in (stores[0], stores[2]):
        assert load_document(s.path).flag("checkout")["targeting"]["fractional"][0] == ["new", 0]


def test_normal_changes_stay_all_or_nothing(tmp_path: Path, flag_file: Path) -> None:
    stores = _three(tmp_path, flag_file)
    before = [stores[0].path.read_bytes(), stores[2].path.read_bytes()]
    with pytest.raises(FlagSourceError):
        ramp(stores, "checkout", 10)
    with pytest.raises(FlagSourceError):
        set_flag(stores, "checkout", state="DISABLED")
    # a kill the flag cannot take (no such variant) writes nothing, even best effort
    with pytest.raises(FlagChangeError):
        kill(stores, "checkout", variant="nope")
    assert [stores[0].path.read_bytes(), stores[2].path.read_bytes()] == before


class _FailingWrites(LocalFileStore):
    def write(self, doc: FlagDocument) -> None:
        raise FlagsError(f"{self.name}: writing the flag file failed: disk full")


def test_failed_write_is_named_and_the_rest_still_killed(tmp_path: Path, flag_file: Path) -> None:
    stores = _three(tmp_path, flag_file)
    stores[1] = _FailingWrites(flag_file)
    stores[0] = LocalFileStore(tmp_path / "first.json")
    stores[0].path.write_bytes(flag_file.read_bytes())
    with pytest.raises(PartialChangeError) as info:
        kill(stores, "checkout")
    assert info.value.result.failed == {str(flag_file): "writing the flag file failed: disk full"}
    assert _killed(stores[0].path) and _killed(stores[2].path)
    ramp([stores[0], stores[2]], "checkout", 50)
    with pytest.raises(FlagsError, match=r"disk full; already written: .*first.json; not"):
        ramp(stores, "checkout", 60)


def test_cli_kill_names_the_sources_it_missed(
    tmp_path: Path, flag_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stores = _three(tmp_path, flag_file)
    names = [s.name for s in stores]
    assert run(["flags", "set", *names, "checkout", "--kill"]) == 3
    out, err = capsys.readouterr()
    assert _killed(stores[0].path) and _killed(stores[2].path)
    assert f"error: {names[1]}: kill not done:" in err
    assert "not done on 1 of 3 source(s)" in err and f"{names[0]}: changed" in out
    assert run(["flags", "set", *names, "checkout", "--ramp", "10"]) == 4
    assert run(["flags", "set", names[0], names[2], "checkout", "--ramp", "10"]) == 0


def test_ramp_kill_and_audit(flag_file: Path, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "flags.jsonl")
    store = LocalFileStore(flag_file)
    for pct in (10, 50, 100):
        ramp(store, "checkout", pct, audit=log, who="alice@laptop")
    assert ramp(store, "checkout", 100, audit=log).changed is False
    kill(store, "checkout", audit=log, who="bob@ops")
    entries = list(log.entries())
    assert [(e.who, e.action, e.field) for e in entries] == [
        ("alice@laptop", "ramp 10%", "targeting"),
        ("alice@laptop", "ramp 50%", "targeting"),
        ("alice@laptop", "ramp 100%", "targeting"),
        ("bob@ops", "kill", "targeting"),
    ]
    assert entries[1].old == {"fractional": [["new", 10], ["old", 90]]}
    assert entries[1].new == {"fractional": [["new", 50], ["old", 50]]}
    assert entries[-1].new is None and entries[-1].target == str(flag_file)
    assert all(e.flag == "checkout" and e.when.endswith("+00:00") for e in entries)
    with pytest.raises(FlagChangeError):
        set_flag(store, "checkout", default_variant="nope")


def test_dry_run_writes_nothing(flag_file: Path) -> None:
    before = flag_file.read_bytes()
    result = ramp(LocalFileStore(flag_file), "checkout", 30, dry_run=True)
    assert result.changed and result.dry_run
    assert flag_file.read_bytes() == before


def test_lint_reports_expired_and_ownerless(flag_file: Path) -> None:
    problems = lint_document(load_document(flag_file), today=date(2026, 11, 27))
    text = [str(p) for p in problems]
    assert any(
        "flag 'checkout', field 'metadata.expires': expired on 2026-03-01" in t for t in text
    )
    assert any("flag 'banner', field 'metadata.owner': no owner" in t for t in text)
    assert len(problems) == 2
    assert lint_document(load_document(flag_file), today=date(2026, 1, 1))[0].flag == "banner"


def test_cli_eval_prints_details(flag_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["flags", "eval", str(flag_file), "checkout"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "flagKey": "checkout",
        "value": False,
        "variant": "old",
        "reason": "STATIC",
        "errorCode": None,
        "errorMessage": None,
        "flagMetadata": {"owner": "team-pay", "expires": "2026-03-01"},
    }
    assert (
        run(["flags", "eval", str(flag_file), "nope", "--type", "integer", "--default", "7"]) == 1
    )
    out = json.loads(capsys.readouterr().out)
    assert (out["value"], out["reason"], out["errorCode"]) == (7, "ERROR", "FLAG_NOT_FOUND")
    assert run(["flags", "eval", str(flag_file), "banner", "--type", "string"]) == 1
    assert json.loads(capsys.readouterr().out)["errorCode"] == "TYPE_MISMATCH"


def test_cli_eval_of_a_broken_file_is_a_parse_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "y"}}}'
    )
    assert run(["flags", "eval", str(bad), "a"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["errorCode"] == "PARSE_ERROR" and "field 'defaultVariant'" in out["errorMessage"]


def test_cli_targeting_context(flag_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["flags", "set", str(flag_file), "banner", "--ramp", "50"]) == 0
    capsys.readouterr()
    seen = set()
    for user in ("a", "b", "c", "d", "e", "f", "g", "h"):
        ctx = json.dumps({"targetingKey": user})
        assert run(["flags", "eval", str(flag_file), "banner", "--context", ctx]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["reason"] == "TARGETING_MATCH"
        seen.add(out["variant"])
    assert seen == {"on", "off"}
    assert run(["flags", "eval", str(flag_file), "banner", "--context", "[1]"]) == 4


def test_cli_set_list_show_lint(
    flag_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "audit.jsonl"
    args = [
        "flags",
        "set",
        str(flag_file),
        "banner",
        "--state",
        "disabled",
        "--audit-log",
        str(log),
    ]
    assert run(args) == 0
    assert 'changed banner.state: "ENABLED" -> "DISABLED"' in capsys.readouterr().out
    assert run(args) == 0
    assert "ok (no change)" in capsys.readouterr().out
    assert len(log.read_text().splitlines()) == 1
    assert run(["flags", "set", str(flag_file), "banner", "--kill", "--ramp", "5"]) == 4
    assert run(["flags", "set", str(flag_file), "banner", "--default-variant", "x"]) == 4
    assert "no variant 'x'" in capsys.readouterr().err
    assert run(["flags", "list", str(flag_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["key"], r["state"], r["type"]) for r in rows] == [
        ("checkout", "ENABLED", "boolean"),
        ("banner", "DISABLED", "boolean"),
    ]
    assert run(["flags", "show", str(flag_file), "checkout"]) == 0
    assert f"# {flag_file}:3" in capsys.readouterr().out
    assert run(["flags", "lint", str(flag_file), "--today", "2026-11-27"]) == 1
    assert "expired on 2026-03-01" in capsys.readouterr().out


def test_lint_warns_about_yml_names(tmp_path: Path) -> None:
    p = tmp_path / "flags.yml"
    p.write_text("flags: {}\n")
    [problem] = lint_document(load_document(p))
    assert "*.yaml" in problem.message and problem.location == str(p)


def test_flags_command_is_wired_into_cdlib(flag_file: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "cdlib", "flags", "eval", str(flag_file), "banner"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["variant"] == "off"
