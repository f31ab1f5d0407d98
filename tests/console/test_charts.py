"""The SVG charts: well-formed, described in words, escaped, and drawn where the
numbers say (no JavaScript involved, so the markup is the picture)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from core import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parsed(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_a_roc_chart_is_valid_svg_with_a_title_and_the_curve():
    svg = _parsed(charts.roc_chart([(0, 0), (0.1, 0.5), (0.4, 0.9), (1, 1)], auc=0.85))
    assert svg.get("role") == "img"
    assert "AUC 0.850" in svg.find(f"{SVG}title").text
    curve = svg.find(f"{SVG}path[@class='series']")
    assert curve.get("d").startswith("M") and curve.get("d").count("L") == 3


def test_points_land_where_their_values_say():
    markup = charts.line_chart(
        [charts.Series("s", [(0, 0), (1, 1)])],
        title="t",
        x_label="x",
        y_label="y",
        x_range=(0, 1),
        y_range=(0, 1),
    )
    d = _parsed(markup).find(f"{SVG}path[@class='series']").get("d")
    left, bottom = charts.MARGIN_LEFT, charts.HEIGHT - charts.MARGIN_BOTTOM
    right, top = charts.WIDTH - charts.MARGIN_RIGHT, charts.MARGIN_TOP
    assert d == f"M{left:.1f},{bottom:.1f} L{right:.1f},{top:.1f}"


def test_labels_are_escaped():
    markup = charts.bar_chart([("<script>alert(1)</script>", 1.0)], title="a & b")
    assert "<script>" not in markup
    _parsed(markup)  # still well-formed


def test_bars_over_the_threshold_are_highlighted():
    markup = charts.bar_chart(
        [("tenure_days", 0.4), ("frequency", 0.05)],
        title="drift",
        highlight=lambda v: v > 0.25,
        vlines=[(0.25, "0.25")],
    )
    fills = [r.get("fill") for r in _parsed(markup).iter(f"{SVG}rect")]
    assert fills == [charts.WARN, charts.PALETTE[0]]


def test_a_calibration_chart_says_its_largest_gap_in_words():
    svg = _parsed(
        charts.calibration_chart(
            [{"predicted": 0.1, "observed": 0.1}, {"predicted": 0.8, "observed": 0.6}]
        )
    )
    assert "20%" in svg.find(f"{SVG}desc").text


def test_stacked_columns_sum_to_their_total():
    markup = charts.column_chart(
        [("d1", [2, 3]), ("d2", [1, 0])], series_names=["a", "b"], title="t", y_label="n"
    )
    rects = [r for r in _parsed(markup).iter(f"{SVG}rect") if r.get("width") != "12"]
    assert len(rects) == 3  # zero-height parts are not drawn
