"""Arguments every management command spells the same way."""

from __future__ import annotations

import argparse
import datetime as dt

from core.time import business_day


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-24") from exc


def add_as_of(parser: argparse.ArgumentParser) -> None:
    """``--as-of DATE``: the business day to act for. Commands are the edge of the system,
    the one place that may default it to today (in the shop's time zone)."""
    parser.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="business day, YYYY-MM-DD (default: today)",
    )


def as_of(options: dict) -> dt.date:
    return business_day(options["as_of"])
