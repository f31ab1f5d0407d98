"""Contrast of the default theme per WCAG 2.1 AA: text 4.5:1 against its background,
focus rings and chart marks 3:1 (1.4.11, non-text contrast). The colours are read from
the stylesheet itself, so changing one there is checked here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import charts

CSS = Path(__file__).resolve().parents[2] / "console" / "static" / "console" / "console.css"

TEXT_PAIRS = [
    ("ink", "paper"),
    ("ink", "panel"),
    ("muted", "paper"),
    ("muted", "panel"),
    ("accent", "paper"),
    ("accent-ink", "accent"),
    ("danger", "paper"),
    ("warn-ink", "warn-bg"),
    ("badge-ink", "high"),
    ("badge-ink", "medium"),
    ("badge-ink", "low"),
    ("badge-ink", "muted"),
    ("nav-ink", "nav"),
]
GRAPHIC_PAIRS = [("focus", "paper"), ("focus", "panel"), ("muted", "paper")]


def _colours() -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS.read_text()))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_formula_matches_the_known_extremes():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("fore", "back"), TEXT_PAIRS)
def test_text_has_aa_contrast(fore, back):
    colours = _colours()
    assert contrast(colours[fore], colours[back]) >= 4.5, (fore, back)


@pytest.mark.parametrize(("fore", "back"), GRAPHIC_PAIRS)
def test_focus_rings_and_borders_of_fields_stand_out(fore, back):
    colours = _colours()
    assert contrast(colours[fore], colours[back]) >= 3.0, (fore, back)


@pytest.mark.parametrize("colour", [*charts.PALETTE, charts.INK, charts.WARN])
def test_chart_marks_stand_out_on_white(colour):
    assert contrast(colour, "#ffffff") >= 3.0
