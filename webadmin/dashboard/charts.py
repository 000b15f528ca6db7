"""Tiny server-side SVG charts (no JavaScript, no CDN): every label is escaped."""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ("#2f6fde", "#1d9a6c", "#e08a1e", "#c2414b", "#7a5cc7", "#3a9fb5", "#8c8c8c")


def column_chart(
    points: list[tuple[str, int]], *, width: int = 640, height: int = 180, color: str = PALETTE[0]
) -> Markup:
    """Vertical bars, one per (label, value); labels under every few bars, values on top."""
    if not points:
        return Markup('<p class="muted">No data yet.</p>')
    top = max(v for _, v in points) or 1
    plot_h, gap = height - 40, 4
    bar_w = max(2.0, (width - gap * len(points)) / len(points))
    every = max(1, len(points) // 7)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(points):
        x = i * (bar_w + gap)
        h = plot_h * value / top
        y = 16 + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}" rx="2">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if value:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">{value}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" font-size="10" text-anchor="middle" '
                f'fill="#555">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(points: list[tuple[str, int]], *, width: int = 420, row: int = 22) -> Markup:
    """Horizontal bars, largest first, with the label on the left and the value on the right."""
    if not points:
        return Markup('<p class="muted">No data yet.</p>')
    points = sorted(points, key=lambda p: -p[1])
    top = max(v for _, v in points) or 1
    label_w, value_w = 140, 40
    plot_w = width - label_w - value_w
    height = row * len(points) + 4
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value) in enumerate(points):
        y = i * row + 2
        w = plot_w * value / top
        color = PALETTE[i % len(PALETTE)]
        short = label if len(label) <= 20 else label[:19] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row * 0.65:.1f}" font-size="12" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{color}" rx="2">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + row * 0.65:.1f}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
