"""The synthetic shop's truth at any cut-off, recomputed from what the database holds.

Backtests compare models with it at earlier cut-offs than the shop's end, so it is read
from the stored orders and events (the same observable history a model sees) plus the
stored process parameters, never from the generator's hidden arrays.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from core.sql import epoch_days_sql, read_frame, timestamp_param
from core.time import cutoff_of, epoch_days
from customers.models import SyntheticResponse, SyntheticShop
from customers.synthetic.process import Clock, Params
from customers.synthetic.responses import expected_effect
from customers.synthetic.truth import (
    churn_parts_of,
    churn_probability_of,
    quiet_log_likelihood,
)


def shop_params(shop: SyntheticShop) -> Params:
    return Params.from_dict({k: v for k, v in shop.params.items() if k != "clock"})


def shop_process(shop: SyntheticShop) -> tuple[Params, Clock]:
    params = shop_params(shop)
    return params, Clock.build(params, **shop.params["clock"])


def _summaries(cutoff: dt.datetime) -> pd.DataFrame:
    c = timestamp_param(cutoff)
    last = """
        SELECT customer_id, external_id, placed_at, n, first_at FROM (
            SELECT customer_id, external_id, placed_at,
                   ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY placed_at DESC, id DESC)
                       AS newest,
                   COUNT(*) OVER (PARTITION BY customer_id) AS n,
                   MIN(placed_at) OVER (PARTITION BY customer_id) AS first_at
            FROM customers_order WHERE status = 'paid' AND placed_at < %s
        ) AS p WHERE newest = 1
    """
    sql = f"""
        WITH last AS ({last})
        SELECT l.customer_id,
               {epoch_days_sql("l.first_at")} AS a,
               l.n - 1 AS x,
               {epoch_days_sql("l.placed_at")} AS t_x,
               CASE WHEN EXISTS (
                   SELECT 1 FROM customers_order r
                   WHERE r.external_id = l.external_id || '-r' AND r.placed_at < %s
               ) THEN 1 ELSE 0 END AS refund_last,
               CASE WHEN EXISTS (
                   SELECT 1 FROM customers_event t
                   WHERE t.external_id = 'tkt-' || l.external_id AND t.occurred_at < %s
               ) THEN 1 ELSE 0 END AS ticket_last,
               COALESCE((
                   SELECT CAST(v.value AS INTEGER) FROM customers_event v
                   WHERE v.external_id = 'rev-' || l.external_id AND v.occurred_at < %s
               ), 0) AS rating_last
        FROM last l
    """
    summary = read_frame(sql, [c, c, c, c])
    # Sessions separately: one pass over visits, joined to the last purchase in pandas,
    # so the plan cannot degrade into one aggregate per customer.
    visits = read_frame(
        f"""
        WITH last AS ({last})
        SELECT e.customer_id,
               COUNT(*) AS sessions,
               SUM(CASE WHEN e.occurred_at > l.placed_at THEN 1 ELSE 0 END) AS sessions_after,
               SUM(CASE WHEN e.occurred_at > l.placed_at
                   THEN {epoch_days_sql("e.occurred_at")} - {epoch_days_sql("l.placed_at")}
                   ELSE 0 END) AS delay_after
        FROM customers_event e JOIN last l ON l.customer_id = e.customer_id
        WHERE e.kind = 'visit' AND e.occurred_at < %s
        GROUP BY e.customer_id
        """,
        [c, c],
    )
    merged = summary.merge(visits, on="customer_id", how="left")
    counts = ["sessions", "sessions_after", "delay_after"]
    merged[counts] = merged[counts].astype(float).fillna(0.0)
    return merged


def _with_quiet(
    s: pd.DataFrame, params: Params, *, cutoff: dt.datetime, origin: float
) -> pd.DataFrame:
    """Add what the truth needs when only some customers' events are recorded: each
    customer's tickets and reviews seen by the cut-off, and the log-probability of having
    none (orders older than the longest delay count through ``x``)."""
    c = timestamp_param(cutoff)
    marks = read_frame(
        """
        SELECT customer_id, COUNT(*) AS events FROM customers_event
        WHERE kind IN ('support_ticket', 'review') AND occurred_at < %s GROUP BY customer_id
        """,
        [c],
    )
    since = cutoff - dt.timedelta(days=max(params.ticket_delay, params.review_delay))
    recent = read_frame(
        f"""
        SELECT customer_id, {epoch_days_sql("placed_at")} AS t FROM customers_order
        WHERE status = 'paid' AND placed_at >= %s AND placed_at < %s
        """,
        [timestamp_param(since), c],
    )
    s = s.merge(marks, on="customer_id", how="left")
    s["events"] = s["events"].fillna(0).astype(float)
    row = pd.Series(np.arange(len(s)), index=s["customer_id"].to_numpy())
    owner = row.reindex(recent["customer_id"].to_numpy()).to_numpy()
    t = recent["t"].to_numpy(float) - origin
    s["quiet"] = quiet_log_likelihood(
        params,
        x=s["x"].to_numpy(float),
        T=epoch_days(cutoff) - origin,
        owner=owner,
        order_time=t,
        is_last=t == s["t_x"].to_numpy(float)[owner],
    )
    return s


def latest_shop() -> SyntheticShop:
    shop = SyntheticShop.objects.order_by("-id").first()
    if shop is None:
        raise ValueError("there is no synthetic shop: truth exists only for generated data")
    return shop


def observed_history(shop: SyntheticShop, *, as_of: dt.date) -> tuple[pd.DataFrame, float]:
    """What the truth conditions on at ``as_of``: one summary row per customer with a paid
    order by then (times in days since the shop's start), and the cut-off in those days."""
    params, _ = shop_process(shop)
    cutoff = cutoff_of(as_of)
    origin = epoch_days(dt.datetime.combine(shop.start, dt.time(), tzinfo=dt.UTC))
    s = _summaries(cutoff)
    s[["a", "t_x"]] = s[["a", "t_x"]].astype(float) - origin
    if 0 < params.events_recorded < 1:
        s = _with_quiet(s, params, cutoff=cutoff, origin=origin)
    return s, epoch_days(cutoff) - origin


def true_churn_parts(*, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
    """``customer_id``, ``left`` (the probability they already left), ``none_if_around``
    (of no paid order in ``(as_of, as_of + horizon]`` if still around) and
    ``days_since_last`` (their last paid order) for every customer with a paid order up to
    ``as_of``, from the latest synthetic shop."""
    shop = latest_shop()
    params, clock = shop_process(shop)
    s, T = observed_history(shop, as_of=as_of)
    left, none_if_around = churn_parts_of(s, params, clock, T=T, horizon=horizon_days)
    return pd.DataFrame(
        {
            "customer_id": s["customer_id"].to_numpy(np.int64),
            "left": left,
            "none_if_around": none_if_around,
            "days_since_last": T - s["t_x"].to_numpy(float),
        }
    )


def true_churn_probabilities(*, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
    """``customer_id``, ``probability`` of no paid order in ``(as_of, as_of + horizon]``
    for every customer with a paid order up to ``as_of``, from the latest synthetic shop."""
    shop = latest_shop()
    params, clock = shop_process(shop)
    s, T = observed_history(shop, as_of=as_of)
    probability = churn_probability_of(s, params, clock, T=T, horizon=horizon_days)
    return pd.DataFrame(
        {"customer_id": s["customer_id"].to_numpy(np.int64), "probability": probability}
    )


def true_offer_effects(pairs: pd.DataFrame, *, as_of: dt.date, window_days: int) -> pd.DataFrame:
    """``pairs`` (``customer_id``, ``offer_type``) with each customer's ``purchase_boost``
    and ``dropout_shock`` for that offer and its true ``effect`` on an order in the
    ``window_days`` after ``as_of`` (:func:`customers.synthetic.responses.expected_effect`).
    A customer with no paid order by then has none to lose: around, not ordering."""
    truth = true_churn_parts(as_of=as_of, horizon_days=window_days).set_index("customer_id")
    half_life = shop_params(latest_shop()).reach_half_life
    columns = ["customer_id", "offer_type", "purchase_boost", "dropout_shock"]
    responses = pd.DataFrame.from_records(
        list(
            SyntheticResponse.objects.filter(
                customer_id__in=pairs["customer_id"].unique().tolist()
            ).values(*columns)
        ),
        columns=columns,
    )
    out = pairs.merge(responses, on=["customer_id", "offer_type"], how="left")
    seen = truth.reindex(out["customer_id"].to_numpy())
    out["effect"] = expected_effect(
        left=seen["left"].fillna(0.0).to_numpy(),
        none_if_around=seen["none_if_around"].fillna(1.0).to_numpy(),
        days_since_last=seen["days_since_last"].to_numpy(),
        boost=out["purchase_boost"].to_numpy(float),
        shock=out["dropout_shock"].to_numpy(float),
        half_life=half_life,
    )
    return out
