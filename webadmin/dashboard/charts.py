"""Tiny server-side SVG charts (no JavaScript, no CDN): every label is escaped and drawn whole.

Colours carry meaning: priorities from grey (low) to red (urgent); everything else one neutral blue.
"""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

ACCENT = "#2f6fde"
MUTED = "#9aa3b2"
PRIORITY_COLOURS = {"low": "#8a94a6", "medium": "#2f6fde", "high": "#e08a1e", "urgent": "#c2414b"}
CHAR_WIDTH = 7.4  # px per character at font-size 12 (system-ui), generous so that no label is cut
EMPTY = Markup('<p class="muted">No data yet.</p>')


def day_label(day: dt.date) -> str:
    return day.strftime("%b %d")


def column_chart(
    points: list[tuple[dt.date, int]], *, width: int = 700, height: int = 190, color: str = ACCENT
) -> Markup:
    """Vertical bars, one per day, each with its date underneath and its value on top."""
    if not points:
        return EMPTY
    top = max(v for _, v in points) or 1
    plot_h, gap = height - 52, 6
    bar_w = max(2.0, (width - gap * len(points)) / len(points))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, (day, value) in enumerate(points):
        x = i * (bar_w + gap)
        h = plot_h * value / top
        y = 16 + plot_h - h
        label = day_label(day)
        middle = x + bar_w / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}" rx="2">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{middle:.1f}" y="{y - 3:.1f}" font-size="11" text-anchor="middle">{value}</text>'
            f'<text class="day" x="{middle:.1f}" y="{height - 22}" font-size="11" text-anchor="middle" '
            f'fill="#374151">{day.day:02d}</text>'
            f'<text x="{middle:.1f}" y="{height - 8}" font-size="10" text-anchor="middle" fill="#6b7280">'
            f"{escape(day.strftime('%b'))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    points: list[tuple[str, int]],
    *,
    colors: dict[str, str] | None = None,
    keep_order: bool = False,
    width: int = 480,
    row: int = 24,
) -> Markup:
    """Horizontal bars with the whole label on the left and the value on the right; largest first unless
    `keep_order` (e.g. priorities, low to urgent). `colors`: a colour per label (others: the accent)."""
    if not points:
        return EMPTY
    if not keep_order:
        points = sorted(points, key=lambda p: -p[1])
    top = max(v for _, v in points) or 1
    label_w = max(60, round(CHAR_WIDTH * max(len(label) for label, _ in points)) + 10)
    value_w = 48
    plot_width = max(140, width - label_w - value_w)  # long labels widen the chart; the page scales it down
    width = label_w + plot_width + value_w
    height = row * len(points) + 4
    parts = [
        f'<svg class="chart bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(points):
        y = i * row + 2
        w = plot_width * value / top
        color = (colors or {}).get(label, ACCENT)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row * 0.65:.1f}" font-size="12" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 9}" fill="{color}" rx="2">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + row * 0.65:.1f}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
