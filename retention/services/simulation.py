"""Closing the loop on a synthetic shop (demo and benchmarks only): customers who received
an offer react as their ground truth says.

Each treated customer whose offer was sent either leaves because of it (probability
``dropout_shock``: their later orders are removed, they never happened) or, if not, places
one extra order inside the campaign's window with probability ``purchase_boost``, scaled
by :func:`~customers.synthetic.responses.reach` for a customer who had already left. The
draws are a fixed hash of the intervention, and each intervention is simulated once (an
audit row marks it), so re-running changes nothing.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.db import transaction

from core.bulk import copy_frame
from core.sql import read_frame, staged_ids
from core.time import cutoff_of
from customers.models import Order, SyntheticResponse, SyntheticTruth
from customers.synthetic.responses import reach
from customers.synthetic.selectors import latest_shop, shop_params
from retention.models import AuditEntry, Intervention
from retention.offers import stable_unit
from retention.services.audit import Action, Actor, audit_write

# The synthetic customers reacting, as the audit trail records them.
SIMULATION = Actor(AuditEntry.Actor.CUSTOMER, via="simulation")
_SHOCK_SALT, _BOOST_SALT, _TIME_SALT = 7_000_001, 7_000_002, 7_000_003


def _received(cutoff: dt.datetime) -> pd.DataFrame:
    rows = (
        Intervention.objects.filter(
            arm=Intervention.Arm.TREATMENT, sent_at__isnull=False, sent_at__lt=cutoff
        )
        .exclude(audit__action=Action.SIMULATED_RESPONSE)
        .values(
            "id", "customer_id", "offer_type", "sent_at", "proposed_at", "campaign__window_days"
        )
    )
    frame = pd.DataFrame.from_records(
        list(rows),
        columns=[
            "id",
            "customer_id",
            "offer_type",
            "sent_at",
            "proposed_at",
            "campaign__window_days",
        ],
    )
    responses = pd.DataFrame.from_records(
        list(
            SyntheticResponse.objects.filter(customer_id__in=frame["customer_id"].tolist()).values(
                "customer_id", "offer_type", "purchase_boost", "dropout_shock"
            )
        ),
        columns=["customer_id", "offer_type", "purchase_boost", "dropout_shock"],
    )
    gone = pd.DataFrame.from_records(
        list(
            SyntheticTruth.objects.filter(customer_id__in=frame["customer_id"].tolist()).values(
                "customer_id", "dropped_out_at"
            )
        ),
        columns=["customer_id", "dropped_out_at"],
    )
    # Synthetic customers only: the inner join drops everyone else.
    return frame.merge(responses, on=["customer_id", "offer_type"]).merge(
        gone, on="customer_id", how="left"
    )


def responses_simulate(*, as_of: dt.date) -> dict[str, int]:
    cutoff = cutoff_of(as_of)
    received = _received(cutoff)
    if received.empty:
        return {"simulated": 0, "left": 0, "extra_orders": 0}
    ids = received["id"].to_numpy(np.int64)
    sent = pd.to_datetime(received["sent_at"], utc=True)
    days_gone = (sent - pd.to_datetime(received["dropped_out_at"], utc=True)).dt.total_seconds()
    half_life = shop_params(latest_shop()).reach_half_life
    boost = received["purchase_boost"].to_numpy() * reach(
        days_gone.to_numpy() / 86_400, half_life=half_life
    )
    left = stable_unit(_SHOCK_SALT, ids) < received["dropout_shock"].to_numpy()
    boosted = ~left & (stable_unit(_BOOST_SALT, ids) < boost)
    window_end = pd.to_datetime(received["proposed_at"], utc=True) + pd.to_timedelta(
        received["campaign__window_days"], unit="D"
    )
    placed = sent + (window_end - sent) * stable_unit(_TIME_SALT, ids)
    with transaction.atomic():
        for customer_id, since in zip(received["customer_id"][left], sent[left], strict=True):
            Order.objects.filter(customer_id=customer_id, placed_at__gt=since).delete()
        extra = received[boosted]
        if len(extra):
            with staged_ids("retention_simulated", extra["customer_id"].unique()) as staged:
                basket = read_frame(
                    f"""SELECT o.customer_id, AVG(CAST(o.total AS DOUBLE PRECISION)) AS value
                        FROM {staged} s JOIN customers_order o ON o.customer_id = s.id
                        WHERE o.status = 'paid' GROUP BY o.customer_id""",
                    [],
                ).set_index("customer_id")["value"]
            copy_frame(
                Order,
                pd.DataFrame(
                    {
                        "external_id": "sim-" + extra["id"].astype(str),
                        "customer_id": extra["customer_id"].to_numpy(),
                        "placed_at": placed[boosted].to_numpy(),
                        "status": Order.Status.PAID.value,
                        "total": extra["customer_id"].map(basket).fillna(25.0).round(2).to_numpy(),
                        "currency": "EUR",
                        "sales_channel": Order.SalesChannel.WEB.value,
                    }
                ).astype({"placed_at": "datetime64[us, UTC]"}),
            )
        audit_write(
            actor=SIMULATION,
            action=Action.SIMULATED_RESPONSE,
            at=cutoff,
            intervention_id=ids,
            detail=[
                {"left": bool(gone), "extra_order": bool(extra_order)}
                for gone, extra_order in zip(left, boosted, strict=True)
            ],
        )
    return {"simulated": len(ids), "left": int(left.sum()), "extra_orders": int(boosted.sum())}
