"""The time rules every app shares: which instant a business day ends at, and which
moment a job acts at.

A business day (``as_of``) is a date; history "on that day" is every row stamped before
the first instant after it. Only the edges of the system (commands, scheduled tasks)
may default a missing day to today.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def cutoff_of(as_of: dt.date) -> dt.datetime:
    """The first instant after ``as_of``: rows strictly before it are history on that day."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def epoch_days(when: dt.datetime) -> float:
    return (when - EPOCH).total_seconds() / 86400.0


def day_of(value: str | None) -> dt.date | None:
    """A task's ``as_of`` argument (an ISO date, as Celery carries it) as a date; None
    when the caller named no day, so the task acts for today and now."""
    return dt.date.fromisoformat(value) if value else None


def business_day(day: dt.date | None) -> dt.date:
    """The day to act for: the one named, or today in the shop's time zone."""
    return day or timezone.localdate()


def moment(day: dt.date | None) -> dt.datetime:
    """The instant a job acts at: now, or when replaying a past day, the end of that day,
    so alerts, sends and audit rows of a replay carry the day they belong to."""
    now = timezone.now()
    return now if day is None else min(now, cutoff_of(day))
