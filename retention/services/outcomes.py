"""What campaigns changed: interventions settle as converted or expired, and each campaign's
arms are compared on retention and revenue.

The comparison is intention-to-treat: every customer assigned to the treatment arm counts,
including offers an agent dismissed or the contact policy blocked, because leaving those
out would compare a hand-picked group with a random one. Each customer's window starts
when they were assigned (proposed), in both arms alike.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.db import transaction
from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from core.time import cutoff_of
from customers.models import Order
from ml.selectors import active_definition
from retention.models import Campaign, CampaignOutcome, Coupon, Intervention
from retention.selectors import intervention_outcomes
from retention.services.audit import CUSTOMER, SCHEDULE, Action, audit_write
from retention.uplift import retention_uplift


def interventions_settle(*, now: dt.datetime) -> dict[str, int]:
    """Sent offers followed by a qualifying order within the campaign's window become
    converted (with the first such order); those whose window has passed without one
    expire. One query per campaign finds each offer's first order."""
    statuses = active_definition().qualifying_statuses
    converted = expired = 0
    waiting_states = [Intervention.State.SENT, Intervention.State.DELIVERED]
    for campaign in Campaign.objects.filter(interventions__state__in=waiting_states).distinct():
        window = dt.timedelta(days=campaign.window_days)
        waiting = Intervention.objects.filter(
            campaign=campaign, state__in=waiting_states, sent_at__isnull=False
        )
        first_order = (
            Order.objects.filter(
                customer_id=OuterRef("customer_id"),
                placed_at__gt=OuterRef("sent_at"),
                placed_at__lte=OuterRef("sent_at") + window,
                status__in=statuses,
            )
            .filter(placed_at__lte=now)
            .order_by("placed_at")
            .values("pk")[:1]
        )
        with transaction.atomic():
            won = waiting.annotate(order=Subquery(first_order)).filter(order__isnull=False)
            won_rows = list(won.values_list("pk", "state", "order"))
            _mark(won_rows, Intervention.State.CONVERTED, CUSTOMER, now)
            over = waiting.exclude(pk__in=[r[0] for r in won_rows]).filter(
                sent_at__lte=now - window
            )
            over_rows = [(pk, state, None) for pk, state in over.values_list("pk", "state")]
            _mark(over_rows, Intervention.State.EXPIRED, SCHEDULE, now)
        converted += len(won_rows)
        expired += len(over_rows)
    stale = _expire_undecided(now)
    return {"converted": converted, "expired": expired + stale}


# The audit action of each state an offer settles in.
_SETTLED = {
    Intervention.State.CONVERTED: Action.CONVERTED,
    Intervention.State.EXPIRED: Action.EXPIRED,
}


def _mark(rows, state: str, actor, now: dt.datetime) -> None:
    """Move ``(id, state before, order id)`` rows to ``state`` and audit each move."""
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["id", "before", "order"])
    updates = [
        Intervention(pk=pk, state=state, converted_order_id=order, updated_at=now)
        for pk, _, order in rows
    ]
    Intervention.objects.bulk_update(
        updates, ["state", "converted_order", "updated_at"], batch_size=2000
    )
    audit_write(
        actor=actor,
        action=_SETTLED[state],
        at=now,
        intervention_id=frame["id"].tolist(),
        from_state=frame["before"],
        to_state=state,
    )


def _expire_undecided(now: dt.datetime) -> int:
    """Proposals nobody decided within the campaign's window are too old to send."""
    expired = 0
    for campaign in Campaign.objects.filter(interventions__state="proposed").distinct():
        old = Intervention.objects.filter(
            campaign=campaign,
            state=Intervention.State.PROPOSED,
            proposed_at__lte=now - dt.timedelta(days=campaign.window_days),
        )
        with transaction.atomic():
            ids = list(old.select_for_update().values_list("pk", flat=True))
            Intervention.objects.filter(pk__in=ids).update(
                state=Intervention.State.EXPIRED, updated_at=now
            )
            audit_write(
                actor=SCHEDULE,
                action=Action.EXPIRED,
                at=now,
                intervention_id=ids,
                from_state=Intervention.State.PROPOSED,
                to_state=Intervention.State.EXPIRED,
                detail={"reason": "not decided within the campaign's window"},
            )
        expired += len(ids)
    return expired


def _arms(campaign: Campaign, cutoff: dt.datetime) -> pd.DataFrame:
    assigned = pd.DataFrame.from_records(
        list(
            Intervention.objects.filter(campaign=campaign).values(
                "id", "arm", "customer_id", "proposed_at"
            )
        ),
        columns=["id", "arm", "customer_id", "proposed_at"],
    )
    if assigned.empty:
        return assigned
    per = intervention_outcomes(assigned.assign(window_days=campaign.window_days), cutoff=cutoff)
    return per.merge(assigned[["id", "arm"]], on="id")


def campaign_evaluate(*, campaign: Campaign, as_of: dt.date) -> CampaignOutcome:
    """Both arms of one campaign on ``as_of``: customers, retained, revenue, discount cost,
    net incremental revenue and the uplift with its 95% interval."""
    per = _arms(campaign, cutoff_of(as_of))
    arms = {}
    for arm in Intervention.Arm.values:
        rows = per[per["arm"] == arm] if len(per) else per
        arms[arm] = {
            "customers": len(rows),
            "retained": int(rows["retained"].sum()) if len(rows) else 0,
            "revenue": round(float(rows["total"].sum()), 2) if len(rows) else 0.0,
        }
    discount = (
        Coupon.objects.filter(intervention__campaign=campaign, redeemed_at__isnull=False).aggregate(
            total=Sum("discount")
        )["total"]
        or 0
    )
    treated, control = arms["treatment"], arms["control"]
    treated["discount_cost"] = float(discount)
    treated["offers_sent"] = Intervention.objects.filter(
        campaign=campaign, sent_at__isnull=False
    ).count()
    for values in arms.values():
        n = values["customers"]
        values["retention"] = round(values["retained"] / n, 4) if n else None
        values["revenue_per_customer"] = round(values["revenue"] / n, 2) if n else None
    uplift = retention_uplift(
        treated=treated["customers"],
        treated_retained=treated["retained"],
        control=control["customers"],
        control_retained=control["retained"],
    )
    net = None
    if treated["customers"] and control["customers"]:
        per_customer = treated["revenue_per_customer"] - control["revenue_per_customer"]
        net = round(per_customer * treated["customers"] - float(discount), 2)
    outcome, _ = CampaignOutcome.objects.update_or_create(
        campaign=campaign,
        as_of=as_of,
        defaults={
            "arms": arms,
            "uplift": uplift.difference,
            "ci_low": uplift.ci_low,
            "ci_high": uplift.ci_high,
            "net_incremental_revenue": net,
            "verdict": uplift.verdict,
            "computed_at": timezone.now(),
        },
    )
    return outcome


def campaigns_evaluate(*, as_of: dt.date) -> list[CampaignOutcome]:
    """Every campaign that has customers and had not ended before the last window."""
    campaigns = Campaign.objects.filter(interventions__isnull=False).distinct()
    return [campaign_evaluate(campaign=c, as_of=as_of) for c in campaigns]
