"""Inline SVG charts for the report (no plotting dependency: the page is one self-contained file)."""

from __future__ import annotations

import html
from typing import Any


def esc(value: Any) -> str:
    return html.escape(str(value))


def svg_bar_chart(
    groups: list[str], series: dict[str, list[float]], title: str, width: int = 640, height: int = 260
) -> str:
    """A grouped bar chart as inline SVG (one group per label, one bar per series), zero line included."""
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756"]
    values = [v for vals in series.values() for v in vals] or [0.0]
    lo, hi = min(0.0, min(values)), max(0.0, max(values))
    span = (hi - lo) or 1.0
    left, top, bottom = 48, 28, 70
    plot_h = height - top - bottom
    group_w = (width - left - 10) / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))

    def y(v: float) -> float:
        return top + (hi - v) / span * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>',
        f'<line x1="{left}" x2="{width - 10}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#333"/>',
    ]
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10">{tick:.3g}</text>')
    for gi, label in enumerate(groups):
        x0 = left + gi * group_w + group_w * 0.1
        for si, (name, vals) in enumerate(series.items()):
            v = vals[gi]
            y1, y2 = sorted((y(v), y(0)))
            parts.append(
                f'<rect x="{x0 + si * bar_w:.1f}" y="{y1:.1f}" width="{bar_w - 1:.1f}" height="{max(y2 - y1, 0.5):.1f}" '
                f'fill="{colors[si % len(colors)]}"><title>{esc(name)} {esc(label)}: {v:.4g}</title></rect>'
            )
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {x0 + group_w * 0.4:.1f} {height - bottom + 14})">{esc(label)}</text>'
        )
    for si, name in enumerate(series):
        parts.append(
            f'<rect x="{left + si * 120}" y="{height - 14}" width="10" height="10" fill="{colors[si % len(colors)]}"/>'
            f'<text x="{left + si * 120 + 14}" y="{height - 5}" font-size="11">{esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_line_chart(
    points: dict[str, list[tuple[float, float]]], title: str, width: int = 640, height: int = 220
) -> str:
    """Line chart(s) as inline SVG: ``{series: [(x, y), ...]}``."""
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756"]
    xs = [x for pts in points.values() for x, _ in pts] or [0.0, 1.0]
    ys = [v for pts in points.values() for _, v in pts] or [0.0, 1.0]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    left, top, bottom, right = 56, 28, 36, 10

    def px(x: float) -> float:
        return left + (x - x_lo) / x_span * (width - left - right)

    def py(v: float) -> float:
        return top + (y_hi - v) / y_span * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="#333"/>',
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{y_hi:.3g}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10">{y_lo:.3g}</text>',
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" font-size="11">step</text>',
    ]
    for si, (name, pts) in enumerate(points.items()):
        if not pts:
            continue
        color = colors[si % len(colors)]
        path = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"><title>{esc(name)} step {x:g}: {v:.4g}</title></circle>'
            for x, v in pts
        ]
        parts.append(
            f'<text x="{width - right - 140}" y="{top + 14 * (si + 1)}" font-size="11" fill="{color}">{esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
