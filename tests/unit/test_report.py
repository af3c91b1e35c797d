"""``cdlib report``: a self-contained HTML page per release, escaped, old records too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cdlib.cli.main import main
from cdlib.release.history import History, ReleaseRecord, StepRecord
from cdlib.report import ReportError, release_report


def _record(state: Path, **kw: object) -> ReleaseRecord:
    t0 = 1_700_000_000.0
    rec = ReleaseRecord(
        "demo",
        "2.0.0",
        "canary",
        id="20240101T000000-abcdef",
        user="alice",
        machine="ci1",
        started=t0,
        finished=t0 + 30,
        outcome="rolled_back",
        reason="canary rolled back to blue: <script>alert(1)</script> 5xx rate 80.00%",
        previous_version="1.0.0",
        previous_group="blue",
        new_group="green",
        weights={"blue": 100, "green": 0},
        steps=[
            StepRecord("deploy 2.0.0 to green", t0 + 1, 5.0, "succeeded", "2 host(s)"),
            StepRecord(
                "traffic 10% -> green",
                t0 + 7,
                0.1,
                "succeeded",
                "weights {'green': 10, 'blue': 90}",
            ),
            StepRecord(
                "gate 'qa' at 10%", t0 + 8, 2.0, "succeeded", "approved by promote from bob"
            ),
            StepRecord("analysis at 10%", t0 + 10, 3.0, "failed", "analysis failed"),
            StepRecord("roll back: weight of green -> 0", t0 + 13, 0.1, "succeeded", "live: blue"),
        ],
        samples=[
            {
                "time": t0 + 11 + i,
                "step": "analysis at 10%",
                "metric": "error_rate",
                "value": v,
                "threshold": 0.05,
                "verdict": verdict,
                "requests": n,
                "weights": {"blue": 90, "green": 10},
            }
            for i, (v, n, verdict) in enumerate([(0.5, 5, "inconclusive"), (0.8, 40, "fail")])
        ],
    )
    for k, v in kw.items():
        setattr(rec, k, v)
    History("demo", state_dir=str(state)).save(rec)
    return rec


def test_report_shows_everything_escaped_and_self_contained(tmp_path: Path) -> None:
    _record(tmp_path)
    page = release_report("demo", state_dir=str(tmp_path))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Nothing to fetch: no src/href attribute, no url(), no import.
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", page)
    for text in ("alice@ci1", "1.0.0", "deploy 2.0.0 to green", "approved by promote from bob"):
        assert text in page
    assert page.count("<svg") == 2  # weights, error_rate
    assert "error_rate crossed its threshold 5.00%: 80.00% at +12s (40 requests" in page
    assert 'class="threshold"' in page and "rollback" in page


def test_report_of_a_record_without_the_newer_fields(tmp_path: Path) -> None:
    # As an older cdlib wrote it: no samples, no weights; plus a field from a newer one.
    rec = _record(tmp_path)
    path = History("demo", state_dir=str(tmp_path)).path(rec.id)
    data = json.loads(path.read_text())
    del data["samples"], data["weights"]
    data["metadata"] = {"ticket": "<b>OPS-1</b>"}
    data["from_a_newer_cdlib"] = {"note": "<i>kept</i>"}
    path.write_text(json.dumps(data))
    page = release_report("demo", rec.id, state_dir=str(tmp_path))
    assert "No analysis samples recorded" in page
    assert "&lt;b&gt;OPS-1&lt;/b&gt;" in page and "<b>" not in page
    assert "from_a_newer_cdlib" in page and "&lt;i&gt;kept&lt;/i&gt;" in page and "<i>" not in page
    assert "traffic 10% -&gt; green" in page  # weights still come from the steps


def test_cli_report_writes_the_file_and_rejects_unknown_app_or_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = _record(tmp_path)
    out = tmp_path / "report.html"
    sd = ["--state-dir", str(tmp_path)]
    assert main(["report", "demo", rec.id, "-o", str(out), *sd]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "nosuch", "-o", str(tmp_path / "x.html"), *sd]) == 4
    assert "no release of app 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "nosuch").exists()  # reading created nothing
    assert main(["report", "demo", "20990101T000000-000000", *sd]) == 4
    err = capsys.readouterr().err
    assert "has no release '20990101T000000-000000'" in err and rec.id in err
    assert main(["report", "demo", "../../etc/passwd", *sd]) == 4
    assert not (tmp_path / "x.html").exists()


def test_report_error_is_bad_input() -> None:
    assert ReportError("x").exit_code == 4


def test_written_report_is_private(tmp_path: Path) -> None:
    from cdlib.report import write_report

    _record(tmp_path)
    out = write_report("demo", tmp_path / "r.html", state_dir=str(tmp_path))
    assert out.stat().st_mode & 0o777 == 0o600
