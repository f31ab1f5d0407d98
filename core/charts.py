"""Small charts as inline SVG, drawn on the server: no JavaScript, nothing fetched, the
same markup in the console and in the admin (colours are attributes, not page CSS).

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in
words what it shows, so a screen reader gets the point without the picture. Functions take
plain numbers and return markup (``str``); callers mark it safe. Every text that reaches
the markup is escaped here.

API (for unifying with other chart code):

- ``line_chart(series, *, title, x_label, y_label, ...)``: lines over a numeric x axis,
  optional shaded band (e.g. a 95% interval), a diagonal (ROC, calibration) and
  horizontal reference lines.
- ``bar_chart(bars, *, title, ...)``: horizontal bars with labels, optional vertical
  reference lines (e.g. PSI 0.1 / 0.25).
- ``column_chart(columns, *, series_names, title, ...)``: stacked columns per category
  (e.g. alerts per day by rule).
- ``roc_chart(points, *, auc)`` and ``calibration_chart(rows)``: the model pictures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Each colour has at least 3:1 contrast against white (WCAG 1.4.11, graphics), checked in
# tests/console/test_theme.py; the dash patterns tell series apart without colour.
PALETTE = ("#1f5fa8", "#b3401a", "#2e7d32", "#6a3d9a", "#8a6100", "#00707a")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 2")
INK = "#1a1a1a"  # text and axes
GRID = "#d0d0d0"
BAND = "#1f5fa8"
WARN = "#b3261e"

WIDTH, HEIGHT = 560, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 16, 16, 44

Format = Callable[[float], str]


def percent(value: float) -> str:
    return f"{value:.0%}"


def number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and (x, y) points in drawing order."""

    name: str
    points: Sequence[tuple[float, float]]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round-numbered ticks spanning [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _range(values: Sequence[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    if fixed is not None:
        return fixed
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05  # lines on the frame's edge are hard to see
    return low - pad, high + pad


def _open(title: str, description: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(description)}</desc>",
    ]


def _text(x: float, y: float, body: str, anchor: str = "middle", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{INK}"{extra}>'
        f"{escape(body)}</text>"
    )


def _y_label(label: str, top: float, bottom: float) -> str:
    middle = (top + bottom) / 2
    return _text(12, middle, label, transform=f"rotate(-90 12 {middle:.1f})")


def _legend(names: Sequence[str], x: float, y: float, band_name: str = "") -> list[str]:
    parts = []
    for i, name in enumerate(names):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        top = y + i * 16
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x + 18:.1f}" y2="{top:.1f}" '
            f'stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}"/>'
        )
        parts.append(_text(x + 24, top + 4, name, anchor="start"))
    if band_name:
        top = y + len(names) * 16
        parts.append(
            f'<rect x="{x:.1f}" y="{top - 6:.1f}" width="18" height="12" fill="{BAND}" '
            f'fill-opacity="0.15"/>'
        )
        parts.append(_text(x + 24, top + 4, band_name, anchor="start"))
    return parts


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    description: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_format: Format = number,
    y_format: Format = number,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    band: Sequence[tuple[float, float, float]] = (),
    band_name: str = "",
    diagonal: bool = False,
    hlines: Sequence[tuple[float, str]] = (),
    markers: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Lines over a numeric x axis. ``band`` is (x, low, high) per point, shaded behind the
    lines; ``diagonal`` draws y = x (a random ranking, perfect calibration); ``hlines`` are
    labelled reference values; ``x_ticks`` replace the numeric ticks (dates)."""
    xs = [x for s in series for x, _ in s.points] + [b[0] for b in band]
    ys = (
        [y for s in series for _, y in s.points]
        + [b[1] for b in band]
        + [b[2] for b in band]
        + [v for v, _ in hlines]
    )
    x0, x1 = _range(xs, x_range)
    y0, y1 = _range(ys, y_range)
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    names = [s.name for s in series]
    band_name = band_name if band else ""
    words = description or f"{title}: " + "; ".join(
        f"{s.name} from {y_format(s.points[0][1])} to {y_format(s.points[-1][1])}"
        for s in series
        if s.points
    )
    out = _open(title, words, width, height)
    for tick in _ticks(y0, y1):
        out.append(
            f'<line x1="{left}" y1="{py(tick):.1f}" x2="{right}" y2="{py(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(_text(left - 6, py(tick) + 4, y_format(tick), anchor="end"))
    ticks = x_ticks if x_ticks is not None else [(t, x_format(t)) for t in _ticks(x0, x1)]
    for value, label in ticks:
        out.append(_text(px(value), bottom + 16, label))
    out.append(
        f'<path d="M{left},{top} V{bottom} H{right}" fill="none" stroke="{INK}" stroke-width="1"/>'
    )
    out.append(_text((left + right) / 2, height - 6, x_label))
    out.append(_y_label(y_label, top, bottom))
    if band:
        upper = " ".join(f"{px(x):.1f},{py(h):.1f}" for x, _, h in band)
        lower = " ".join(f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(band))
        out.append(f'<polygon points="{upper} {lower}" fill="{BAND}" fill-opacity="0.15"/>')
    if diagonal:
        lo, hi = max(x0, y0), min(x1, y1)
        out.append(
            f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}" '
            f'stroke="{INK}" stroke-width="1" stroke-dasharray="3 3"/>'
        )
    for value, label in hlines:
        out.append(
            f'<line x1="{left}" y1="{py(value):.1f}" x2="{right}" y2="{py(value):.1f}" '
            f'stroke="{WARN}" stroke-width="1" stroke-dasharray="5 3"/>'
        )
        out.append(_text(right - 4, py(value) - 4, label, anchor="end"))
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(s.points)
        )
        out.append(
            f'<path class="series" d="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
            f'stroke-dasharray="{dash}" stroke-linejoin="round"/>'
        )
        if markers or len(s.points) == 1:
            out += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>'
                for x, y in s.points
            ]
    if len(names) > 1 or band_name:
        out += _legend(names, left + 10, top + 10, band_name)
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: Format = number,
    description: str = "",
    vlines: Sequence[tuple[float, str]] = (),
    highlight: Callable[[float], bool] | None = None,
    width: int = WIDTH,
) -> str:
    """Horizontal bars, one per (label, value), in the order given; bars for which
    ``highlight`` holds are drawn in the warning colour (e.g. drifting features)."""
    label_width, row = 190, 22
    height = MARGIN_TOP + row * max(1, len(bars)) + 28
    left, right = label_width, width - 60
    high = max([v for _, v in bars] + [v for v, _ in vlines] + [0.0])
    high = high or 1.0

    def px(value: float) -> float:
        return left + max(0.0, value) / high * (right - left)

    words = description or f"{title}: " + "; ".join(
        f"{label} {value_format(v)}" for label, v in bars
    )
    out = _open(title, words, width, height)
    for i, (label, value) in enumerate(bars):
        y = MARGIN_TOP + i * row
        colour = WARN if highlight and highlight(value) else PALETTE[0]
        shown = label if len(label) <= 30 else label[:29] + "…"
        out.append(_text(left - 6, y + 15, shown, anchor="end"))
        out.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(1.0, px(value) - left):.1f}" '
            f'height="{row - 6}" fill="{colour}"/>'
        )
        out.append(_text(px(value) + 4, y + 15, value_format(value), anchor="start"))
    bottom = MARGIN_TOP + row * max(1, len(bars))
    for value, label in vlines:
        out.append(
            f'<line x1="{px(value):.1f}" y1="{MARGIN_TOP}" x2="{px(value):.1f}" y2="{bottom}" '
            f'stroke="{WARN}" stroke-width="1" stroke-dasharray="4 3"/>'
        )
        out.append(_text(px(value), bottom + 16, label))
    out.append("</svg>")
    return "".join(out)


def column_chart(
    columns: Sequence[tuple[str, Sequence[float]]],
    *,
    series_names: Sequence[str],
    title: str,
    y_label: str,
    description: str = "",
    value_format: Format = number,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Stacked columns: one per (category label, one value per series)."""
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT - (120 if len(series_names) > 1 else 0)
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    totals = [sum(values) for _, values in columns]
    ticks = _ticks(0.0, max([*totals, 1.0]))
    y1 = ticks[-1] if ticks[-1] > 0 else 1.0

    def py(y: float) -> float:
        return bottom - y / y1 * (bottom - top)

    words = description or f"{title}: " + "; ".join(
        f"{label} {value_format(total)}" for (label, _), total in zip(columns, totals, strict=True)
    )
    out = _open(title, words, width, height)
    for tick in ticks:
        out.append(
            f'<line x1="{left}" y1="{py(tick):.1f}" x2="{right}" y2="{py(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(_text(left - 6, py(tick) + 4, value_format(tick), anchor="end"))
    slot = (right - left) / max(1, len(columns))
    every = max(1, math.ceil(len(columns) / 10))
    for i, (label, values) in enumerate(columns):
        x, base = left + i * slot + slot * 0.15, 0.0
        for j, value in enumerate(values):
            if value > 0:
                out.append(
                    f'<rect x="{x:.1f}" y="{py(base + value):.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{py(base) - py(base + value):.1f}" '
                    f'fill="{PALETTE[j % len(PALETTE)]}"/>'
                )
            base += value
        if i % every == 0:
            out.append(_text(x + slot * 0.35, bottom + 16, label))
    out.append(
        f'<path d="M{left},{top} V{bottom} H{right}" fill="none" stroke="{INK}" stroke-width="1"/>'
    )
    out.append(_y_label(y_label, top, bottom))
    if len(series_names) > 1:
        for j, name in enumerate(series_names):
            y = top + 10 + j * 16
            out.append(
                f'<rect x="{right + 12}" y="{y - 8}" width="12" height="12" '
                f'fill="{PALETTE[j % len(PALETTE)]}"/>'
            )
            out.append(_text(right + 30, y + 2, name, anchor="start"))
    out.append("</svg>")
    return "".join(out)


def roc_chart(points: Sequence[tuple[float, float]], *, auc: float, title: str = "") -> str:
    """The ROC curve (false against true positive rate) with the diagonal of a ranking no
    better than chance."""
    return line_chart(
        [Series(f"AUC {auc:.3f}", points)],
        title=title or f"ROC curve (AUC {auc:.3f})",
        description=(
            f"ROC curve on the holdout: AUC {auc:.3f}; the dashed diagonal is a ranking no "
            "better than chance"
        ),
        x_label="false positive rate (retained customers flagged)",
        y_label="true positive rate (churners caught)",
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        x_format=percent,
        y_format=percent,
        diagonal=True,
    )


def calibration_chart(rows: Sequence[dict], *, title: str = "") -> str:
    """Reliability diagram: mean predicted against observed churn per decile of predicted
    probability; on the dashed diagonal the probabilities can be taken at face value."""
    points = [(float(r["predicted"]), float(r["observed"])) for r in rows]
    gap = max((abs(p - o) for p, o in points), default=0.0)
    return line_chart(
        [Series("deciles", points)],
        title=title or "Calibration (reliability) on the holdout",
        description=(
            "Mean predicted against observed churn in each tenth of customers by predicted "
            f"probability; the largest gap is {gap:.0%} "
            "(on the dashed diagonal the probabilities are exact)"
        ),
        x_label="predicted churn probability",
        y_label="observed churn rate",
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        x_format=percent,
        y_format=percent,
        diagonal=True,
        markers=True,
    )
