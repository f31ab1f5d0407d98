"""Small server-side SVG charts: no JavaScript, no assets, nothing fetched by the browser.

Plain functions from numbers to SVG text; every label is escaped here, so the result can
be marked safe and embedded as it is (admin pages, the console, e-mails). No Django or ML
import: any page can reuse it.

    svg = line_chart([Series("Model", x, y), Series("Random", x, y0, dashed=True)],
                     title="Qini curve", x_label="customers targeted", y_label="...")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

PALETTE = ("#1f6feb", "#8c959f", "#d1242f", "#1a7f37", "#9a6700")


@dataclass(frozen=True)
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False
    color: str | None = None


def percent(value: float) -> str:
    return f"{value:.0%}"


def number(value: float) -> str:
    return f"{value:.3g}"


def _ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
    if hi <= lo:
        return np.array([lo])
    return np.linspace(lo, hi, count)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 520,
    height: int = 300,
    x_format: Callable[[float], str] = percent,
    y_format: Callable[[float], str] = number,
    note: str = "",
) -> str:
    """Lines on shared axes with a legend; the y axis always includes zero."""
    left, right, top, bottom = 64, 16, 34, 58
    xs = np.concatenate([np.asarray(s.x, dtype=float) for s in series] or [np.zeros(1)])
    ys = np.concatenate([np.asarray(s.y, dtype=float) for s in series] or [np.zeros(1)])
    ys = ys[np.isfinite(ys)]
    x0, x1 = float(np.min(xs)), float(np.max(xs))
    y0, y1 = min(0.0, float(np.min(ys, initial=0))), max(0.0, float(np.max(ys, initial=0)))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pad = (y1 - y0) * 0.05
    y0, y1 = (y0 - pad if y0 < 0 else y0), y1 + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x):
        return left + (np.asarray(x, dtype=float) - x0) / (x1 - x0) * plot_w

    def py(y):
        return top + (1 - (np.asarray(y, dtype=float) - y0) / (y1 - y0)) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#d0d7de"/>',
    ]
    for tick in _ticks(y0, y1):
        y = py(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(tick))}</text>"
        )
    for tick in _ticks(x0, x1):
        x = px(tick)
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape(x_format(tick))}</text>"
        )
    if y0 < 0 < y1:
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(0):.1f}" y2="{py(0):.1f}" '
            'stroke="#57606a"/>'
        )
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        ok = np.isfinite(np.asarray(s.y, dtype=float))
        points = " ".join(
            f"{x:.1f},{y:.1f}"
            for x, y in zip(px(np.asarray(s.x)[ok]), py(np.asarray(s.y)[ok]), strict=True)
        )
        dash = ' stroke-dasharray="5,4"' if s.dashed else ""
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{escape(color)}" '
            f'stroke-width="2"{dash}/>'
        )
        lx = left + 8 + i * 150
        out.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{height - 12}" y2="{height - 12}" '
            f'stroke="{escape(color)}" stroke-width="2"{dash}/>'
            f'<text x="{lx + 22}" y="{height - 8}">{escape(s.label)}</text>'
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(14,{top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    if note:
        out.append(
            f'<text x="{width - right}" y="18" text-anchor="end" fill="#57606a">'
            f"{escape(note)}</text>"
        )
    out.append("</svg>")
    return "".join(out)
