"""Inline SVG line charts for the release report, drawn server-side (no script, no library).

Every text that reaches the SVG goes through :func:`html.escape`; numbers are formatted
here, so nothing from a record is ever markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36

#: Colours of series, in order (readable on white, distinct for colour-blind readers).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")


@dataclass
class Series:
    """One line: points ``(seconds since start, value)``; ``step`` draws it as steps."""

    name: str
    points: list[tuple[float, float]]
    step: bool = False
    #: Optional CSS class per point (``fail`` marks a failing sample).
    marks: list[str] = field(default_factory=list)
    #: Its colour (default: the next of :data:`PALETTE`).
    color: str | None = None


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    threshold: float | None = None,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    y_min: float | None = 0.0,
    y_max: float | None = None,
    markers: Sequence[tuple[float, str]] = (),
    css_class: str = "chart",
    x_range: tuple[float, float] | None = None,
) -> str:
    """An SVG chart of ``series`` over time, with a dashed ``threshold`` line and
    vertical ``markers`` ``(seconds, label)``."""
    xs = [x for s in series for x, _ in s.points] + [x for x, _ in markers]
    ys = [y for s in series for _, y in s.points] + ([threshold] if threshold is not None else [])
    x0, x1 = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    if x1 <= x0:
        x1 = x0 + 1.0
    lo = y_min if y_min is not None else (min(ys) if ys else 0.0)
    hi = y_max if y_max is not None else (max(ys) if ys else 1.0)
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    if y_max is None:
        hi += (hi - lo) * 0.08

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return H - BOTTOM - (y - lo) / (hi - lo) * (H - TOP - BOTTOM)

    out = [
        f'<svg class="{escape(css_class)}" role="img" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
        'class="plot"/>',
    ]
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" class="axis" text-anchor="end">'
            f"{escape(fmt(y))}</text>"
        )
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        out.append(
            f'<text x="{px(x):.1f}" y="{H - BOTTOM + 16}" class="axis" text-anchor="middle">'
            f"{escape(seconds(x))}</text>"
        )
    for x, label in markers:
        # The label goes on the side of the line with room for it.
        right = px(x) < W - RIGHT - 80
        out.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{H - BOTTOM}" class="marker"/>'
            f'<text x="{px(x) + (3 if right else -3):.1f}" y="{TOP + 12}" class="marker-label" '
            f'text-anchor="{"start" if right else "end"}">{escape(label)}</text>'
        )
    if threshold is not None:
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(threshold):.1f}" '
            f'y2="{py(threshold):.1f}" class="threshold"/>'
            f'<text x="{W - RIGHT - 4}" y="{py(threshold) - 4:.1f}" class="threshold-label" '
            f'text-anchor="end">threshold {escape(fmt(threshold))}</text>'
        )
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        pts: list[tuple[float, float]] = []
        for j, (x, y) in enumerate(s.points):
            if s.step and j:
                pts.append((x, s.points[j - 1][1]))
            pts.append((x, y))
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{escape(color)}" stroke-width="2" '
            f'class="series" data-series="{escape(s.name)}"/>'
        )
        for j, (x, y) in enumerate(s.points):
            mark = s.marks[j] if j < len(s.marks) else ""
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{escape(color)}" '
                f'class="point {escape(mark)}"><title>{escape(s.name)} {escape(fmt(y))} at '
                f"{escape(seconds(x))}</title></circle>"
            )
    legend_x = LEFT
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{legend_x}" y="{H - 12}" width="10" height="10" fill="{escape(color)}"/>'
            f'<text x="{legend_x + 14}" y="{H - 3}" class="legend">{escape(s.name)}</text>'
        )
        legend_x += 24 + 7 * len(s.name)
    out.append("</svg>")
    return "".join(out)


def seconds(x: float) -> str:
    """``+12s`` or ``+3m05s``: a time offset from the release's start."""
    x = max(0.0, x)
    if x < 60:
        return f"+{x:.0f}s" if x >= 10 or x == int(x) else f"+{x:.1f}s"
    return f"+{int(x // 60)}m{int(x % 60):02d}s"
