"""Reads of the retention workflow."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.db.models import Q, QuerySet, Sum

from retention.models import Alert, Campaign, Intervention
from retention.sql import cutoff_of, read_frame, staged_ids, timestamp_param


def active_campaigns(*, as_of: dt.date) -> QuerySet[Campaign]:
    return Campaign.objects.filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=as_of),
        status=Campaign.Status.ACTIVE,
        starts_on__lte=as_of,
    ).prefetch_related("offers")


def open_alerts_of_rule(rule_id: int) -> pd.Series:
    """Open alert id per customer id, for a rule."""
    rows = Alert.objects.filter(rule_id=rule_id, state__in=Alert.OPEN_STATES).values_list(
        "customer_id", "pk"
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["customer_id", "alert_id"])
    return frame.set_index("customer_id")["alert_id"]


def campaign_customers(campaign: Campaign) -> pd.Index:
    ids = Intervention.objects.filter(campaign=campaign).values_list("customer_id", flat=True)
    return pd.Index(list(ids), dtype="int64")


def campaign_commitments(campaign: Campaign) -> tuple[int, float]:
    """Offers in the treatment arm not dismissed or blocked, and their face cost so far."""
    committed = Intervention.objects.filter(campaign=campaign, arm=Intervention.Arm.TREATMENT)
    committed = committed.exclude(
        state__in=[Intervention.State.DISMISSED, Intervention.State.BLOCKED]
    )
    total = committed.aggregate(cost=Sum("expected_cost"))["cost"] or 0.0
    return committed.count(), float(total)


def recommended_skus(
    customer_ids, *, as_of: dt.date, k: int = 3, days: int = 365
) -> dict[int, list[str]]:
    """Up to ``k`` products per customer: the most bought, in the last ``days``, by customers
    sharing the customer's favourite category, that the customer has not bought yet.
    Customers with no category history get the shop's bestsellers."""
    cutoff = cutoff_of(as_of)
    with staged_ids("retention_recommend_for", customer_ids) as staged:
        bought = read_frame(
            f"""
            SELECT o.customer_id, l.product_id, p.category, COUNT(*) AS n
            FROM {staged} s
            JOIN customers_order o ON o.customer_id = s.id AND o.placed_at < %s
            JOIN customers_orderline l ON l.order_id = o.id
            JOIN customers_product p ON p.id = l.product_id
            GROUP BY o.customer_id, l.product_id, p.category
            """,
            [timestamp_param(cutoff)],
        )
    popular = read_frame(
        """
        SELECT p.category, p.id AS product_id, p.sku, COUNT(DISTINCT o.customer_id) AS buyers
        FROM customers_orderline l
        JOIN customers_order o ON o.id = l.order_id
        JOIN customers_product p ON p.id = l.product_id
        WHERE o.placed_at >= %s AND o.placed_at < %s AND o.status = 'paid'
        GROUP BY p.category, p.id, p.sku
        """,
        [timestamp_param(cutoff - dt.timedelta(days=days)), timestamp_param(cutoff)],
    ).sort_values(["buyers", "product_id"], ascending=[False, True])
    if popular.empty:
        return {}
    ids = pd.Index(customer_ids, dtype="int64")
    favourite = (
        bought.groupby(["customer_id", "category"])["n"]
        .sum()
        .reset_index()
        .sort_values(["customer_id", "n", "category"], ascending=[True, False, True])
        .drop_duplicates("customer_id")
        .set_index("customer_id")["category"]
        .reindex(ids)
    )
    depth = k + 20  # enough candidates to still have k after removing what they own
    candidates = popular.groupby("category").head(depth)
    wanted = pd.DataFrame({"customer_id": ids, "category": favourite.to_numpy()})
    picks = wanted.merge(candidates, on="category")
    fallback = wanted[~wanted["customer_id"].isin(picks["customer_id"])][["customer_id"]]
    picks = pd.concat([picks, fallback.merge(popular.head(depth), how="cross")])
    owned = bought[["customer_id", "product_id"]].assign(owned=True)
    picks = picks.merge(owned, on=["customer_id", "product_id"], how="left")
    picks = picks[picks["owned"].isna()].sort_values(
        ["customer_id", "buyers", "product_id"], ascending=[True, False, True]
    )
    top = picks.groupby("customer_id").head(k)
    return top.groupby("customer_id")["sku"].agg(list).to_dict()


def true_average_effect(campaign: Campaign, *, as_of: dt.date) -> float:
    """The generator's average effect on the treated of a campaign assigned on ``as_of``:
    per treated customer who received the offer,
    ``(1 - shock) * (q + (1 - q) * boost) - q`` with ``q`` the true probability of a paid
    order in the window without the offer; 0 for those who received nothing.
    Synthetic shops only (the benchmark's yardstick for the measured uplift)."""
    from customers.models import SyntheticResponse
    from customers.synthetic.selectors import true_churn_probabilities

    truth = true_churn_probabilities(as_of=as_of, horizon_days=campaign.window_days)
    q = 1 - truth.set_index("customer_id")["probability"]
    treated = pd.DataFrame.from_records(
        list(
            Intervention.objects.filter(campaign=campaign, arm=Intervention.Arm.TREATMENT).values(
                "customer_id", "offer_type", "sent_at"
            )
        ),
        columns=["customer_id", "offer_type", "sent_at"],
    )
    responses = pd.DataFrame.from_records(
        list(
            SyntheticResponse.objects.filter(customer__interventions__campaign=campaign).values(
                "customer_id", "offer_type", "purchase_boost", "dropout_shock"
            )
        ),
        columns=["customer_id", "offer_type", "purchase_boost", "dropout_shock"],
    )
    t = treated.merge(responses, on=["customer_id", "offer_type"], how="left")
    base = t["customer_id"].map(q).to_numpy(float)
    shock, boost = t["dropout_shock"].to_numpy(float), t["purchase_boost"].to_numpy(float)
    effect = (1 - shock) * (base + (1 - base) * boost) - base
    effect[t["sent_at"].isna().to_numpy()] = 0.0
    return float(effect.mean()) if len(effect) else 0.0
