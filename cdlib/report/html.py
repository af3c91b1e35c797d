"""One release as a self-contained HTML page: who, what, when, steps, weights, metrics.

The page needs no network to open: the CSS is inline, the charts are SVG drawn here,
and there is no script. Every text from the record (names, reasons, metadata, step
details) is HTML-escaped, so a ``<script>`` in a reason shows as text.

Records written by older cdlib versions (no samples, no metadata) render with what
they have; fields this version does not know are listed as they are.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import fields
from html import escape
from typing import Any

from cdlib.release.history import ReleaseRecord, StepRecord
from cdlib.release.sampling import ERROR_RATE, RESPONSE_TIME, Sample
from cdlib.report.charts import Series, line_chart, seconds

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 16px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eceef1;vertical-align:top}th{font-weight:600;color:#4a5160}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.outcome{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.o-succeeded{background:#2e7d32}.o-rolled_back,.o-failed,.o-aborted{background:#c62828}
.o-running,.o-interrupted{background:#b26a00}
.s-failed{color:#c62828;font-weight:600}.s-succeeded{color:#2e7d32}
.detail{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px;color:#4a5160}
.reason{white-space:pre-wrap;font-family:ui-monospace,monospace;background:#fff4f4;
border-left:4px solid #c62828;padding:8px 10px;margin-top:10px}
svg{width:100%;height:auto;background:#fff}svg .plot{fill:#fcfcfd;stroke:#dde1e6}
svg .grid{stroke:#eceef1}svg .axis,svg .legend{font-size:11px;fill:#4a5160}
svg .threshold{stroke:#c62828;stroke-dasharray:6 4;stroke-width:1.5}
svg .threshold-label{font-size:11px;fill:#c62828}
svg .marker{stroke:#7a8190;stroke-dasharray:2 3}svg .marker-label{font-size:10px;fill:#4a5160}
svg .point.fail{stroke:#c62828;stroke-width:2;r:4}
.bar{height:14px;background:#1f77b4;border-radius:2px;min-width:2px}
.bar.failed{background:#c62828}.muted{color:#7a8190}
"""

_KNOWN = {f.name for f in fields(ReleaseRecord)}


def render(rec: ReleaseRecord, raw: Mapping[str, Any] | None = None) -> str:
    """The report page of ``rec``; ``raw`` is the record's JSON as stored, whose fields
    this version does not model (metadata added later ...) are shown as they are."""
    extra = {k: v for k, v in (raw or {}).items() if k not in _KNOWN}
    samples = [s for s in (Sample.from_json(d) for d in rec.samples) if s is not None]
    t0 = rec.started
    end = rec.finished or max([t0] + [s.started + (s.duration or 0) for s in rec.steps])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network: nothing may load from anywhere, even if a text slipped through.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(rec.app)} {_e(rec.version)}: {_e(rec.outcome)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        _summary(rec, end, extra),
        _timeline(rec, t0, end),
        _weights(rec, samples, t0, end),
        _metrics(rec, samples, t0, end),
        _gates(rec, t0),
        _outcome(rec, end),
        f'<p class="muted">cdlib report, written {_e(_when(time.time()))}</p>',
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _summary(rec: ReleaseRecord, end: float, extra: Mapping[str, Any]) -> str:
    rows = [
        ("App", rec.app),
        ("Version", rec.version),
        ("Strategy", rec.strategy),
        ("Release id", rec.id),
        ("Who", f"{rec.user}@{rec.machine}" + (f" (pid {rec.pid})" if rec.pid else "")),
        ("Started", _when(rec.started)),
        ("Finished", _when(rec.finished) if rec.finished else "not finished"),
        ("Took", _dur(end - rec.started)),
        ("Previous", f"{rec.previous_version or '-'} on {rec.previous_group or '-'}"),
        ("New group", rec.new_group or "-"),
        ("Router", str(rec.router.get("kind", "-")) if rec.router else "-"),
    ]
    if rec.environment:
        rows.append(("Environment", rec.environment))
    if rec.build or rec.build_sha256:
        rows.append(("Build", f"{rec.build or '-'} (sha256 {rec.build_sha256 or 'unknown'})"))
    rows += [(f"meta {k}", v) for k, v in sorted(rec.metadata.items())]
    for a in rec.approvals:
        by = f" by {a.get('by')}" if a.get("by") else ""
        rows.append((f"gate {a.get('gate', '?')}", f"{a.get('how', '?')}{by}"))
    for k, v in sorted(extra.items()):
        rows.append((k, v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(str(v))}</td></tr>" for k, v in rows)
    return (
        f'<h1>Release of {_e(rec.app)} {_e(rec.version)} <span class="outcome '
        f'o-{_e(rec.outcome)}" id="outcome">{_e(rec.outcome)}</span></h1>'
        f'<div class="card"><table id="summary">{body}</table></div>'
    )


def _timeline(rec: ReleaseRecord, t0: float, end: float) -> str:
    if not rec.steps:
        return '<h2>Steps</h2><p class="muted">No step recorded.</p>'
    span = max(end - t0, 0.001)
    rows = []
    for s in rec.steps:
        off = s.started - t0
        dur = s.duration or 0.0
        left = max(0.0, min(100.0, off / span * 100))
        width = max(0.3, min(100.0 - left, dur / span * 100))
        bar = (
            f'<div style="margin-left:{left:.2f}%;width:{width:.2f}%" class="bar '
            f'{"failed" if s.outcome == "failed" else ""}"></div>'
        )
        rows.append(
            f'<tr class="step"><td>{_e(s.name)}<div class="detail">{_e(s.detail)}</div></td>'
            f'<td class="num">{_e(seconds(off))}</td>'
            f'<td class="num">{_e(_dur(s.duration) if s.duration is not None else "...")}</td>'
            f'<td class="s-{_e(s.outcome)}">{_e(s.outcome)}</td>'
            f'<td style="width:30%">{bar}</td></tr>'
        )
    return (
        '<h2>Steps</h2><div class="card"><table id="steps"><tr><th>Step</th><th>At</th>'
        "<th>Took</th><th>Outcome</th><th>Timeline</th></tr>" + "".join(rows) + "</table></div>"
    )


_WEIGHTS = re.compile(r"['\"]([\w.-]+)['\"]:\s*(\d+)")


def weight_points(
    rec: ReleaseRecord, samples: list[Sample], t0: float
) -> dict[str, list[tuple[float, float]]]:
    """Weights per group over time: traffic steps' details, samples, the final weights."""
    points: list[tuple[float, Mapping[str, int]]] = []
    for s in rec.steps:
        if s.outcome == "succeeded" and ("weights {" in s.detail or s.name.startswith("roll back")):
            found = {g: int(w) for g, w in _WEIGHTS.findall(s.detail)}
            if found:
                points.append((s.started + (s.duration or 0) - t0, found))
    points += [(x.time - t0, x.weights) for x in samples if x.weights]
    if rec.weights:
        points.append(((rec.finished or points[-1][0] + t0 if points else t0) - t0, rec.weights))
    points.sort(key=lambda p: p[0])
    out: dict[str, list[tuple[float, float]]] = {}
    for t, ws in points:
        for g, w in ws.items():
            out.setdefault(str(g), []).append((t, float(w)))
    return out


def _weights(rec: ReleaseRecord, samples: list[Sample], t0: float, end: float) -> str:
    series = [
        Series(g, pts, step=True) for g, pts in sorted(weight_points(rec, samples, t0).items())
    ]
    if not series:
        return '<h2>Traffic weights</h2><p class="muted">No weights recorded.</p>'
    chart = line_chart(
        "traffic weight per group (%)",
        series,
        fmt=lambda v: f"{v:.0f}%",
        y_max=100,
        markers=_rollback_marker(rec, t0),
        css_class="chart weights",
        x_range=(0.0, max(end - t0, 1.0)),
    )
    return f'<h2>Traffic weights</h2><div class="card" id="weights">{chart}</div>'


def _rollback_marker(rec: ReleaseRecord, t0: float) -> list[tuple[float, str]]:
    return [(s.started - t0, "rollback") for s in rec.steps if s.name.startswith("roll back")]


def _metrics(rec: ReleaseRecord, samples: list[Sample], t0: float, end: float) -> str:
    if not samples:
        return (
            '<h2>Analysis</h2><p class="muted">No analysis samples recorded (a release '
            "without analysed canary pauses, or written by an older cdlib).</p>"
        )
    out = ['<h2>Analysis</h2><div class="card" id="analysis">']
    for metric in dict.fromkeys(s.metric for s in samples):
        mine = [s for s in samples if s.metric == metric and s.value is not None]
        if not mine:
            continue
        threshold = next((s.threshold for s in reversed(mine) if s.threshold is not None), None)
        fmt = _fmt(metric)
        series = []
        for step in dict.fromkeys(s.step for s in mine):
            pts = [s for s in mine if s.step == step]
            series.append(
                Series(
                    step or metric,
                    [(s.time - t0, float(s.value or 0.0)) for s in pts],
                    marks=["fail" if s.verdict == "fail" else s.verdict for s in pts],
                )
            )
        chart = line_chart(
            f"{metric} against its threshold",
            series,
            threshold=threshold,
            fmt=fmt,
            markers=_rollback_marker(rec, t0),
            css_class=f"chart metric metric-{metric}",
            x_range=(0.0, max(end - t0, 1.0)),
        )
        first_fail = next((s for s in mine if s.verdict == "fail"), None)
        crossed = (
            f'<p class="crossed s-failed">{_e(metric)} crossed its threshold '
            f"{_e(fmt(first_fail.threshold or 0.0))}: {_e(fmt(first_fail.value or 0.0))} at "
            f"{_e(seconds(first_fail.time - t0))} ({first_fail.requests} requests, "
            f"{_e(first_fail.step)})</p>"
            if first_fail is not None
            else '<p class="muted">Within its threshold in every sample.</p>'
        )
        out.append(f'<h3>{_e(metric)}</h3><figure data-metric="{_e(metric)}">{chart}</figure>')
        out.append(crossed)
    rows = "".join(
        f'<tr class="sample v-{_e(s.verdict)}"><td class="num">{_e(seconds(s.time - t0))}</td>'
        f"<td>{_e(s.step)}</td><td>{_e(s.metric)}</td>"
        f'<td class="num">{_e(_fmt(s.metric)(s.value) if s.value is not None else "-")}</td>'
        f'<td class="num">{_e(_fmt(s.metric)(s.threshold) if s.threshold is not None else "-")}'
        f'</td><td class="num">{s.requests}</td><td>{_e(s.verdict)}</td>'
        f"<td>{_e(_weights_text(s.weights))}</td></tr>"
        for s in samples
    )
    out.append(
        '<details><summary>Every sample</summary><table id="samples"><tr><th>At</th>'
        "<th>Step</th><th>Metric</th><th>Value</th><th>Threshold</th><th>Requests</th>"
        f"<th>Verdict</th><th>Weights</th></tr>{rows}</table></details></div>"
    )
    return "".join(out)


def _gates(rec: ReleaseRecord, t0: float) -> str:
    gates = [s for s in rec.steps if is_gate(s)]
    if not gates:
        return ""
    rows = "".join(
        f'<tr><td>{_e(s.name)}</td><td class="num">{_e(seconds(s.started - t0))}</td>'
        f'<td class="num">{_e(_dur(s.duration) if s.duration is not None else "waiting")}</td>'
        f"<td>{_e(s.detail or s.outcome)}</td></tr>"
        for s in gates
    )
    return (
        '<h2>Gates</h2><div class="card"><table id="gates"><tr><th>Gate</th><th>At</th>'
        f"<th>Waited</th><th>Decision</th></tr>{rows}</table></div>"
    )


def is_gate(s: StepRecord) -> bool:
    """Whether step ``s`` waits for a person (a gate, a paused canary step)."""
    return s.name.startswith("gate ") or s.name.startswith("paused at")


def _outcome(rec: ReleaseRecord, end: float) -> str:
    reason = (
        f'<div class="reason" id="reason">{_e(rec.reason)}</div>'
        if rec.reason
        else '<p class="muted" id="reason">No reason recorded.</p>'
    )
    live = _weights_text(rec.weights) if rec.weights else "-"
    return (
        f'<h2>Outcome</h2><div class="card"><p><span class="outcome o-{_e(rec.outcome)}">'
        f"{_e(rec.outcome)}</span> after {_e(_dur(end - rec.started))}; traffic at the end: "
        f"{_e(live)}</p>{reason}</div>"
    )


def metric_format(metric: str) -> Any:
    """How a value of ``metric`` reads: a percentage, milliseconds, or as is."""
    if metric == ERROR_RATE:
        return lambda v: f"{v:.2%}"
    if metric == RESPONSE_TIME:
        return lambda v: f"{v:.0f} ms" if abs(v) >= 10 else f"{v:.1f} ms"
    return lambda v: f"{v:g}"


_fmt = metric_format


def _weights_text(ws: Mapping[str, int]) -> str:
    return ", ".join(f"{g} {w}%" for g, w in sorted(ws.items()))


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _dur(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}s" if x < 60 else f"{int(x // 60)}m{x % 60:04.1f}s"


def _e(text: str) -> str:
    return escape(text, quote=True)
