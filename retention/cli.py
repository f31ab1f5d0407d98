"""Arguments every management command spells the same way."""

from __future__ import annotations

import argparse
import datetime as dt

from django.utils import timezone


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
    return options["as_of"] or timezone.localdate()


def moment(day: dt.date | None) -> dt.datetime:
    """The instant a job acts at: now, or when replaying a past day, the end of that day,
    so alerts, sends and audit rows of a replay carry the day they belong to."""
    from retention.sql import cutoff_of

    now = timezone.now()
    return now if day is None else min(now, cutoff_of(day))
