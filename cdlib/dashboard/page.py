"""The dashboard page: HTML rendered here from a :func:`~cdlib.dashboard.model.snapshot`.

Every text from the state store, a flag file or a request is HTML-escaped here; the page
loads only its own script and style (its content security policy forbids anything
else), and the script replaces the live part with the ``html`` the JSON endpoint
returns, which this module rendered and escaped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from cdlib.report.charts import PALETTE, Series, line_chart
from cdlib.report.html import metric_format

__all__ = ["error_page", "live_html", "page"]


def page(snap: Mapping[str, Any], *, can_act: bool, interval: float, log: Sequence[Any]) -> str:
    """The whole page: header (with the sign-in form when actions are enabled) and the
    live part, refreshed every ``interval`` seconds by the page's script."""
    login = (
        '<form id="login" class="login" autocomplete="off">'
        '<input id="login-name" name="name" placeholder="your name" maxlength="64">'
        '<input id="login-token" name="token" type="password" placeholder="access token">'
        '<button type="submit">Sign in</button><span id="whoami" class="muted"></span></form>'
        if can_act
        else '<span class="badge" id="readonly">read-only</span>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>cdlib dashboard</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/dashboard.css"></head><body>'
        '<header><h1>cdlib dashboard</h1><span class="muted">state '
        f"{_e(str(snap.get('state', '')))}</span>"
        f'<span id="updated" class="muted">updated {_e(_clock(snap.get("generated")))}</span>'
        f'{login}<div id="notice" role="status"></div></header>'
        f'<main id="live" data-interval="{interval:g}">'
        f"{live_html(snap, can_act=can_act, log=log)}</main>"
        '<script src="/static/dashboard.js"></script></body></html>'
    )


def live_html(snap: Mapping[str, Any], *, can_act: bool, log: Sequence[Any]) -> str:
    """The part of the page that the script refreshes: apps, metrics, flags, log."""
    apps = snap.get("apps") or []
    parts = [_app(a, can_act) for a in apps] or [
        '<p class="muted card">No release recorded in this state store yet.</p>'
    ]
    return "".join(
        [
            '<section id="apps">',
            *parts,
            "</section>",
            _metrics(snap.get("metrics") or {}, apps),
            _flags(snap.get("flags") or []),
            _log(log),
        ]
    )


def _app(a: Mapping[str, Any], can_act: bool) -> str:
    name = str(a["app"])
    live = a.get("live")
    live_text = (
        f"{live.get('version') or '?'} on {live.get('group') or '?'}" if live else "nothing yet"
    )
    idle = ", ".join(f"{i.get('version') or '-'} on {i.get('group')}" for i in a.get("idle", []))
    notes = []
    if a.get("lock"):
        notes.append(f"lock: {a['lock']}" + (" (stale)" if a.get("lock_stale") else ""))
    if a.get("router_error"):
        notes.append(f"router not read: {a['router_error']}")
    notes += [f"skipped record {s}" for s in a.get("skipped", [])]
    note_html = "".join(f'<p class="warn">{_e(n)}</p>' for n in notes)
    return (
        f'<article class="card app" data-app="{_e(name)}" id="app-{_e(name)}">'
        f"<h2>{_e(name)}</h2>"
        '<dl class="versions">'
        f'<dt>live</dt><dd class="live-version">{_e(live_text)}</dd>'
        f'<dt>idle</dt><dd class="idle-version">{_e(idle or "-")}</dd>'
        f"<dt>traffic</dt><dd>{_weights_bar(a.get('weights') or {})}"
        f'<span class="muted"> (from the {_e(str(a.get("source", "")))})</span></dd></dl>'
        f"{note_html}{_current(name, a.get('current'), can_act)}{_history(name, a)}</article>"
    )


def _current(app: str, cur: Mapping[str, Any] | None, can_act: bool) -> str:
    if not cur:
        return '<p class="muted current idle">No release in progress.</p>'
    n, m = cur.get("step"), cur.get("of")
    where = f"step {n} of {m}" if m else f"step {n}"
    step_name = cur.get("step_name") or "starting"
    waiting = cur.get("waiting_at")
    buttons = ""
    if can_act:
        rid = _e(str(cur["id"]))
        buttons = (
            '<div class="actions">'
            f'<button class="act promote" data-action="promote" data-app="{_e(app)}" '
            f'data-release="{rid}">Promote</button>'
            f'<button class="act abort" data-action="abort" data-app="{_e(app)}" '
            f'data-release="{rid}">Abort</button></div>'
        )
    wait_html = (
        f'<p class="waiting" id="waiting-{_e(app)}">waiting for approval at {_e(str(waiting))}</p>'
        if waiting
        else ""
    )
    steps = "".join(
        f'<li class="s-{_e(str(s.get("outcome")))}">{_e(str(s.get("name")))}'
        f'<span class="muted"> {_e(_dur(s.get("duration")))}</span></li>'
        for s in cur.get("steps", [])
    )
    return (
        f'<section class="current" id="current-{_e(app)}" data-release="{_e(str(cur["id"]))}">'
        f"<h3>Releasing {_e(str(cur.get('version')))} "
        f'<span class="muted">{_e(str(cur.get("strategy")))} by {_e(str(cur.get("who")))}, '
        f"started {_e(_clock(cur.get('started')))}</span></h3>"
        f'<p class="progress"><span class="stepno" id="step-{_e(app)}">{_e(where)}</span>: '
        f'<span class="stepname">{_e(str(step_name))}</span></p>{wait_html}'
        f'<div class="release-weights" id="weights-{_e(app)}">'
        f"{_weights_bar(cur.get('weights') or {})}{_weight_chart(cur)}</div>"
        f"{_analysis(app, cur.get('analysis') or [], cur.get('samples') or [], cur.get('started'))}"
        f"{buttons}"
        f'<details class="steps"><summary>{len(cur.get("steps", []))} steps</summary>'
        f"<ol>{steps}</ol></details></section>"
    )


#: Groups named after a colour are drawn in it (blue/green releases read at a glance).
_COLOURS = {"blue": "#1f77b4", "green": "#2ca02c", "red": "#d62728", "orange": "#ff7f0e"}


def _colour(group: str, i: int) -> str:
    return _COLOURS.get(group.lower(), PALETTE[i % len(PALETTE)])


def _weights_bar(weights: Mapping[str, Any]) -> str:
    """A stacked bar of traffic per group, with a legend; text in the legend, not the SVG."""
    items = [(str(g), int(w)) for g, w in sorted(weights.items()) if isinstance(w, int | float)]
    if not items:
        return '<span class="muted">no weights recorded</span>'
    total = sum(w for _, w in items) or 1
    x = 0.0
    rects, legend = [], []
    for i, (g, w) in enumerate(items):
        width = w * 100 / total
        color = _colour(g, i)
        rects.append(
            f'<rect x="{x:.2f}" y="0" width="{width:.2f}" height="10" fill="{color}">'
            f"<title>{_e(g)} {w}%</title></rect>"
        )
        legend.append(
            f'<span class="legend" data-group="{_e(g)}" data-weight="{w}">'
            f'<svg class="swatch" viewBox="0 0 10 10" width="10" height="10">'
            f'<rect width="10" height="10" fill="{color}"/></svg> {_e(g)} {w}%</span>'
        )
        x += width
    return (
        '<span class="weights">'
        '<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" width="100%" '
        f'height="14" role="img">{"".join(rects)}</svg>{"".join(legend)}</span>'
    )


def _weight_chart(cur: Mapping[str, Any]) -> str:
    series = cur.get("weight_series") or {}
    if not any(len(pts) > 1 for pts in series.values()):
        return ""  # one point is no line yet: the bar above says it
    end = max([0.0, *(float(t) for pts in series.values() for t, _ in pts)])
    return (
        '<div class="charts">'
        + line_chart(
            "traffic weight per group (%)",
            [
                Series(str(g), [(float(t), float(w)) for t, w in pts], True, [], _colour(g, i))
                for i, (g, pts) in enumerate(sorted(series.items()))
            ],
            fmt=lambda v: f"{v:.0f}%",
            y_max=100,
            css_class="chart weights",
            x_range=(0.0, max(end, 1.0)),
        )
        + "</div>"
    )


def _analysis(
    app: str, latest: Sequence[Mapping[str, Any]], samples: Sequence[Any], started: Any = None
) -> str:
    if not latest:
        return '<p class="muted">No analysis sample yet.</p>'
    rows = []
    for s in latest:
        fmt = metric_format(str(s.get("metric")))
        value, threshold = s.get("value"), s.get("threshold")
        shown = fmt(value) if isinstance(value, int | float) else "-"
        limit = fmt(threshold) if isinstance(threshold, int | float) else "-"
        rows.append(
            f'<tr class="sample v-{_e(str(s.get("verdict")))}" '
            f'data-metric="{_e(str(s.get("metric")))}">'
            f"<td>{_e(str(s.get('metric')))}</td>"
            f'<td class="num value">{_e(shown)}</td><td class="num">{_e(limit)}</td>'
            f'<td class="num">{_e(str(s.get("requests")))}</td>'
            f'<td class="verdict">{_e(str(s.get("verdict")))}</td>'
            f"<td>{_e(str(s.get('step')))}</td></tr>"
        )
    charts = []
    t0 = float(started or min((float(s["time"]) for s in samples), default=0.0))
    for metric in dict.fromkeys(str(s.get("metric")) for s in samples):
        mine = [s for s in samples if s.get("metric") == metric and s.get("value") is not None]
        if len(mine) < 2:
            continue
        threshold = next((s["threshold"] for s in reversed(mine) if s.get("threshold")), None)
        charts.append(
            line_chart(
                f"{metric} of the canary",
                [
                    Series(
                        metric,
                        [(float(s["time"]) - t0, float(s["value"])) for s in mine],
                        marks=["fail" if s.get("verdict") == "fail" else "" for s in mine],
                    )
                ],
                threshold=threshold,
                fmt=metric_format(metric),
                css_class=f"chart metric metric-{metric}",
            )
        )
    return (
        f'<table class="analysis" id="analysis-{_e(app)}"><tr><th>Metric</th><th>Latest</th>'
        "<th>Threshold</th><th>Requests</th><th>Verdict</th><th>Step</th></tr>"
        f'{"".join(rows)}</table><div class="charts">{"".join(charts)}</div>'
    )


def _history(app: str, a: Mapping[str, Any]) -> str:
    rows = []
    for r in a.get("history", []):
        href = f"/apps/{quote(app, safe='')}/releases/{quote(str(r['id']), safe='')}"
        who = str(r.get("who", ""))
        gates = "; ".join(
            f"{g.get('gate')}: {g.get('how')}" + (f" by {g.get('by')}" if g.get("by") else "")
            for g in r.get("approvals", [])
        )
        took = _dur(float(r["finished"]) - float(r["started"])) if r.get("finished") else "running"
        rows.append(
            f'<tr class="release r-{_e(str(r.get("outcome")))}">'
            f'<td><a href="{_e(href)}">{_e(str(r["id"]))}</a></td>'
            f"<td>{_e(str(r.get('version')))}</td><td>{_e(str(r.get('strategy')))}</td>"
            f'<td><span class="outcome o-{_e(str(r.get("outcome")))}">'
            f"{_e(str(r.get('outcome')))}</span></td>"
            f'<td>{_e(_when(r.get("started")))}</td><td class="num">{_e(took)}</td>'
            f"<td>{_e(who)}</td><td>{_e(gates or '-')}</td></tr>"
        )
    return (
        f'<details class="history" id="history-{_e(app)}" open><summary>History '
        f"({len(rows)} latest)</summary><table><tr><th>Release</th><th>Version</th>"
        "<th>Strategy</th><th>Outcome</th><th>Started</th><th>Took</th><th>Who</th>"
        f"<th>Gates</th></tr>{''.join(rows)}</table></details>"
    )


def _metrics(overall: Mapping[str, Any], apps: Sequence[Mapping[str, Any]]) -> str:
    def row(label: str, m: Mapping[str, Any], ident: str) -> str:
        cfr = m.get("change_failure_rate")
        ttr = m.get("time_to_restore")
        return (
            f'<tr id="{_e(ident)}"><th>{_e(label)}</th><td class="num">{m.get("releases", 0)}</td>'
            f'<td class="num rpd">{float(m.get("releases_per_day") or 0):.2f}</td>'
            f'<td class="num cfr">{_e(f"{cfr:.1%}" if cfr is not None else "-")}</td>'
            f'<td class="num ttr">{_e(_dur(ttr) if ttr is not None else "-")}</td>'
            f'<td class="num">{m.get("unrestored", 0)}</td></tr>'
        )

    rows = [row("all apps", overall, "metrics-all")]
    rows += [row(str(a["app"]), a.get("metrics") or {}, f"metrics-{a['app']}") for a in apps]
    days = overall.get("days", 30)
    return (
        f'<section class="card" id="metrics"><h2>Delivery, last {float(days):g} days</h2>'
        "<table><tr><th></th><th>Releases</th><th>Per day</th><th>Change failure rate</th>"
        f"<th>Time to restore (median)</th><th>Not restored</th></tr>{''.join(rows)}</table>"
        '<p class="muted">Definitions: docs/observing.md, "Delivery metrics".</p></section>'
    )


def _flags(sources: Sequence[Mapping[str, Any]]) -> str:
    if not sources:
        return (
            '<section class="card" id="flags"><h2>Feature flags</h2><p class="muted">'
            "No flag source given (<code>--flags FILE_OR_SOURCE</code>).</p></section>"
        )
    out = ['<section class="card" id="flags"><h2>Feature flags</h2>']
    for src in sources:
        out.append(f"<h3>{_e(str(src.get('source')))}</h3>")
        if src.get("error"):
            out.append(f'<p class="warn">{_e(str(src["error"]))}</p>')
            continue
        rows = []
        for f in src.get("flags", []):
            roll = f.get("rollout")
            if roll:
                cell = _weights_bar({r["variant"]: r["percent"] for r in roll})
            elif f.get("targeting"):
                cell = '<span class="muted">targeting rules</span>'
            else:
                cell = f'<span class="muted">everyone: {_e(str(f.get("default")))}</span>'
            rows.append(
                f'<tr class="flag" data-flag="{_e(str(f.get("key")))}">'
                f"<td>{_e(str(f.get('key')))}</td><td>{_e(str(f.get('state')))}</td>"
                f"<td>{_e(str(f.get('default')))}</td>"
                f"<td>{_e(', '.join(f.get('variants', [])))}</td><td>{cell}</td></tr>"
            )
        out.append(
            "<table><tr><th>Flag</th><th>State</th><th>Default</th><th>Variants</th>"
            f"<th>Rollout</th></tr>{''.join(rows)}</table>"
        )
    out.append("</section>")
    return "".join(out)


def _log(log: Sequence[Any]) -> str:
    rows = "".join(
        f'<li class="log-{_e(str(e.get("level")))}"><span class="muted">'
        f"{_e(_clock(e.get('time')))}</span> <b>{_e(str(e.get('level')))}</b> "
        f"{_e(str(e.get('message')))}</li>"
        for e in reversed(list(log))
    )
    return (
        '<section class="card" id="log"><h2>Dashboard log</h2>'
        f'<ul class="log">{rows or "<li class=muted>nothing yet</li>"}</ul></section>'
    )


def error_page(status: int, message: str) -> str:
    """A small page for a 4xx answer, naming what was wrong."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{status}</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"></head><body><main>'
        f'<h1>{status}</h1><p class="warn" id="error">{_e(message)}</p>'
        '<p><a href="/">back to the dashboard</a></p></main></body></html>'
    )


def _clock(ts: Any) -> str:
    if not isinstance(ts, int | float) or not ts:
        return "-"
    return time.strftime("%H:%M:%S UTC", time.gmtime(ts))


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float) or not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _dur(x: Any) -> str:
    if not isinstance(x, int | float):
        return ""
    if x < 60:
        return f"{x:.1f}s"
    if x < 3600:
        return f"{int(x // 60)}m{int(x % 60):02d}s"
    return f"{int(x // 3600)}h{int(x % 3600 // 60):02d}m"


def _e(text: str) -> str:
    return escape(text, quote=True)
