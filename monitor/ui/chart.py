"""A small line chart of coverage per topic per day, drawn as an SVG string (no plotting library).

The chart is for the review page and for ``/chart/coverage.svg``: axes with whole-number
ticks, one line per topic, a legend, and an accessible ``<title>``/``<desc>``. Series differ
in colour (the Okabe-Ito palette, distinguishable with the common colour-vision deficiencies),
in dash pattern and in marker shape, so none relies on colour alone. Every text is escaped:
topic names come from a YAML file, but the chart never trusts its inputs to be markup-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from html import escape

# Okabe & Ito (2008); yellow (#F0E442) is left out, being unreadable on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "7 4", "2 3", "9 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# Past this many days the per-day markers crowd the line and are left out.
MARKER_DAYS = 62
_LEFT, _RIGHT, _TOP, _AXIS_LABELS = 44, 20, 36, 26
_LEGEND_ROW, _CHAR_W = 20, 7.0


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _nice_step(peak: int, max_ticks: int = 5) -> int:
    """The smallest step of 1, 2 or 5 times a power of ten giving at most ``max_ticks`` ticks above 0."""
    if peak <= max_ticks:
        return 1
    magnitude = 10 ** math.floor(math.log10(peak / max_ticks))
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if math.ceil(peak / step) <= max_ticks:
            return step
    return 10 * magnitude


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    fill = f'fill="{colour}" stroke="#ffffff" stroke-width="1"'
    if shape == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" {fill}/>'
    if shape == "triangle":
        return f'<path d="M{x:.1f},{y - 4.5:.1f} L{x + 4.5:.1f},{y + 3.5:.1f} L{x - 4.5:.1f},{y + 3.5:.1f} Z" {fill}/>'
    if shape == "diamond":
        return f'<path d="M{x:.1f},{y - 5:.1f} L{x + 5:.1f},{y:.1f} L{x:.1f},{y + 5:.1f} L{x - 5:.1f},{y:.1f} Z" {fill}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.8" {fill}/>'


def _legend_rows(labels: Sequence[str], width: float) -> list[list[tuple[int, str, float]]]:
    """Legend entries ``(index, label, x)`` laid out in rows that fit the width."""
    rows: list[list[tuple[int, str, float]]] = [[]]
    x = float(_LEFT)
    for index, label in enumerate(labels):
        entry_w = 34 + len(label) * _CHAR_W + 18
        if rows[-1] and x + entry_w > width - _RIGHT:
            rows.append([])
            x = float(_LEFT)
        rows[-1].append((index, label, x))
        x += entry_w
    return rows


def coverage_svg(
    days: Sequence[date],
    series: Sequence[tuple[str, Mapping[date, int]]],
    *,
    title: str = "Coverage per topic per day",
    width: int = 760,
    plot_height: int = 180,
) -> str:
    """Draw matches per topic per day as an SVG line chart.

    Args:
        days: the days of the x axis, oldest first (missing counts are zero).
        series: one ``(label, counts by day)`` per topic, in legend order.
        title: the chart's accessible title (also drawn at the top).
        width: the SVG's width in pixels.
        plot_height: the height of the plotting area in pixels.

    Returns:
        A standalone ``<svg>`` element: each series is a ``<g class="series">`` carrying
        ``data-topic`` and ``data-counts`` (comma-separated, one per day).
    """
    labels = [label for label, _ in series]
    legend = _legend_rows(labels, width) if labels else []
    bottom = _TOP + plot_height
    height = bottom + _AXIS_LABELS + len(legend) * _LEGEND_ROW + 8
    values = [[int(counts.get(day, 0)) for day in days] for _, counts in series]
    peak = max((v for row in values for v in row), default=0)
    step = _nice_step(peak)
    y_max = max(step, math.ceil(peak / step) * step)
    plot_w = width - _LEFT - _RIGHT

    def x_of(i: int) -> float:
        return _LEFT + (plot_w / 2 if len(days) == 1 else plot_w * i / (len(days) - 1))

    def y_of(v: float) -> float:
        return bottom - plot_height * v / y_max

    totals = "; ".join(f"{label}: {sum(row)}" for label, row in zip(labels, values, strict=True))
    span = f"{days[0].isoformat()} to {days[-1].isoformat()}" if days else "no days"
    desc = f"Matches per day, {span}. Totals: {totals or 'no topics'}."
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="coverage-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        f'font-family="{_attr(FONT)}" font-size="12">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(desc)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="20" font-size="14" font-weight="600" fill="#222222">{escape(title)}</text>',
    ]
    # Horizontal grid lines and y-axis labels at whole numbers.
    for tick in range(0, y_max + 1, step):
        y = y_of(tick)
        out.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{width - _RIGHT}" y2="{y:.1f}" '
            f'stroke="{"#555555" if tick == 0 else "#e3e3e3"}" stroke-width="1"/>'
        )
        out.append(
            f'<text class="y-label" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444444">{tick}</text>'
        )
    out.append(
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}" stroke="#555555" stroke-width="1"/>'
    )
    # Date labels: one per ~60 px at most (eight on the default width), always the last day's.
    every = max(1, math.ceil(len(days) / max(2, min(8, plot_w // 60))))
    for i, day in enumerate(days):
        if i % every and i != len(days) - 1:
            continue
        if i != len(days) - 1 and x_of(len(days) - 1) - x_of(i) < 72:
            continue  # would overlap the last day's label (about 40 px wide, drawn left of its tick)
        x = x_of(i)
        # The last day's label ends at its tick, so it never runs off the right edge.
        anchor = "end" if i == len(days) - 1 and len(days) > 1 else "middle"
        out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#555555"/>')
        out.append(
            f'<text class="x-label" x="{x:.1f}" y="{bottom + 17}" text-anchor="{anchor}" fill="#444444">'
            f"{escape(day.strftime('%d %b'))}</text>"
        )
    for index, (label, row) in enumerate(zip(labels, values, strict=True)):
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        shape = MARKERS[index % len(MARKERS)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(row))
        out.append(f'<g class="series" data-topic="{_attr(label)}" data-counts="{",".join(map(str, row))}">')
        out.append(f"<title>{escape(label)}: {sum(row)} matches</title>")
        if len(row) > 1:
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.2"'
                f'{dash_attr} stroke-linejoin="round"/>'
            )
        if len(row) <= MARKER_DAYS:
            for i, v in enumerate(row):
                out.append(
                    f'<g class="point" data-day="{days[i].isoformat()}" data-count="{v}">'
                    f"<title>{escape(label)}, {days[i].isoformat()}: {v}</title>"
                    f"{_marker(shape, x_of(i), y_of(v), colour)}</g>"
                )
        out.append("</g>")
    if not labels:
        out.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_height / 2:.1f}" text-anchor="middle" '
            'fill="#444444">No topics yet</text>'
        )
    elif peak == 0:
        out.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_height / 2:.1f}" text-anchor="middle" '
            'fill="#444444">No matches in these days</text>'
        )
    out.append('<g class="legend">')
    for row_no, row_entries in enumerate(legend):
        y = bottom + _AXIS_LABELS + row_no * _LEGEND_ROW + 10
        for index, label, x in row_entries:
            colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 26:.1f}" y2="{y:.1f}" stroke="{colour}" '
                f'stroke-width="2.2"{dash_attr}/>'
            )
            out.append(_marker(MARKERS[index % len(MARKERS)], x + 13, y, colour))
            out.append(f'<text x="{x + 32:.1f}" y="{y + 4:.1f}" fill="#222222">{escape(label)}</text>')
    out.append("</g></svg>")
    return "\n".join(out)
