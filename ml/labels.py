"""Churn labels: did a qualifying order follow within the horizon after the cut-off?"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from core.sql import placeholders, read_frame, timestamp_param
from core.time import cutoff_of
from ml.models import ChurnDefinition


def label_window(as_of: dt.date, horizon_days: int) -> tuple[dt.datetime, dt.datetime]:
    """``(as_of, as_of + horizon]`` in days, as the half-open instant range it covers."""
    start = cutoff_of(as_of)
    return start, start + dt.timedelta(days=horizon_days)


def labels_complete(as_of: dt.date, *, horizon_days: int, today: dt.date) -> bool:
    """Labels at ``as_of`` are known once the whole horizon lies in the past of ``today``."""
    return as_of + dt.timedelta(days=horizon_days) <= today


def churn_labels(
    customer_ids: pd.Index | np.ndarray, *, as_of: dt.date, definition: ChurnDefinition
) -> np.ndarray:
    """1 = churned (no qualifying order in the horizon), aligned with ``customer_ids``.

    The population is the caller's (the feature rows), so labels never invent customers.
    """
    start, end = label_window(as_of, definition.horizon_days)
    statuses = list(definition.qualifying_statuses)
    bought = read_frame(
        f"""
        SELECT DISTINCT customer_id FROM customers_order
        WHERE placed_at >= %s AND placed_at < %s AND status IN ({placeholders(statuses)})
        """,
        [timestamp_param(start), timestamp_param(end), *statuses],
    )
    returned = np.isin(np.asarray(customer_ids), bought["customer_id"].to_numpy())
    return (~returned).astype(np.int8)
