"""Reads of the retention workflow."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import Q, QuerySet, Sum

from core.sql import NumbersQuery, placeholders, read_numbers
from core.time import cutoff_of
from customers.models import Product
from ml.grouping import positions
from ml.models import ScoringRun
from ml.reasons import TEXT, as_json_lists
from ml.recommendations import NO_PICK
from ml.selectors import run_picks
from retention.models import (
    DEFAULT_DAILY_CAPACITY,
    AgentCapacity,
    Alert,
    Campaign,
    CaseReason,
    Intervention,
    Queue,
)


def active_campaigns(*, as_of: dt.date) -> QuerySet[Campaign]:
    return Campaign.objects.filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=as_of),
        status=Campaign.Status.ACTIVE,
        starts_on__lte=as_of,
    ).prefetch_related("offers")


def alert_for_card(alert_id: int) -> Alert:
    """An alert with what its chat card shows: customer, rule and assignee."""
    return Alert.objects.select_related("customer", "rule", "assigned_to").get(pk=alert_id)


def intervention_with_campaign(intervention_id: int) -> Intervention:
    """An intervention with its campaign, whose limits an edit is checked against."""
    return Intervention.objects.select_related("campaign").get(pk=intervention_id)


def open_cases() -> pd.Series:
    """Open case id per customer id (read as numbers: half a million model instances'
    worth of ORM tuples took 1.6 s)."""
    (found,) = read_numbers(
        NumbersQuery(
            "SELECT CAST(customer_id AS BIGINT) AS customer_id, CAST(id AS BIGINT) AS id"
            f" FROM retention_alert WHERE state IN ({placeholders(Alert.OPEN_STATES)})",
            list(Alert.OPEN_STATES),
            {"customer_id": "int8", "id": "int8"},
        )
    )
    return pd.Series(found["id"], index=pd.Index(found["customer_id"], name="customer_id"))


def customers_with_open_case_of_rule(rule_id: int) -> pd.Index:
    """Customers whose open case lists the rule (a campaign's targets)."""
    (found,) = read_numbers(
        NumbersQuery(
            "SELECT CAST(a.customer_id AS BIGINT) AS customer_id FROM retention_casereason h"
            " JOIN retention_alert a ON a.id = h.alert_id"
            f" WHERE h.rule_id = %s AND a.state IN ({placeholders(Alert.OPEN_STATES)})",
            [rule_id, *Alert.OPEN_STATES],
            {"customer_id": "int8"},
        )
    )
    return pd.Index(found["customer_id"], name="customer_id")


def case_reasons(alert_ids: list[int]) -> dict[int, list[CaseReason]]:
    """Every rule listed on each of these cases, highest priority first, with its rule."""
    listed: dict[int, list[CaseReason]] = {pk: [] for pk in alert_ids}
    for reason in (
        CaseReason.objects.filter(alert_id__in=alert_ids)
        .select_related("rule")
        .order_by("alert_id", "-rule__priority", "rule__name")
    ):
        listed[reason.alert_id].append(reason)
    return listed


def case_offers(alert_ids: list[int]) -> dict[int, Intervention]:
    """The offer each case shows: of its interventions, the newest proposal round, and
    in it the one worth most (the one that set the case's priority)."""
    shown: dict[int, Intervention] = {}
    for intervention in (
        Intervention.objects.filter(alert_id__in=alert_ids)
        .select_related("campaign", "decided_by")
        .order_by("alert_id", "-proposed_at", "-expected_net_value", "-pk")
    ):
        shown.setdefault(intervention.alert_id, intervention)
    return shown


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants that belong to a business day: after the cut-off of the day before,
    up to and including the day's own cut-off, which is when a replayed day acts
    (``retention.cli.moment``)."""
    return cutoff_of(day - dt.timedelta(days=1)), cutoff_of(day)


@dataclass
class TodaysQueue:
    """One queue's or agent's list for a day: the cases to do (within capacity) and those
    watched, each highest priority first, and how many were done that day."""

    name: str
    capacity: int
    to_do: QuerySet[Alert]
    watching: QuerySet[Alert]
    to_do_count: int
    watching_count: int
    done_today: int


def todays_queue(*, day: dt.date, queue: str | None = None, agent=None) -> TodaysQueue:
    """An agent's list (their assigned cases) or a queue's (its unassigned ones). Each
    part reads a partial index that holds only waiting cases in priority order."""
    if (queue is None) == (agent is None):
        raise ValueError("name a queue or an agent")
    if agent is not None:
        mine = Q(assigned_to=agent)
        name = agent.get_username()
        row = AgentCapacity.objects.filter(user=agent).first()
    else:
        mine = Q(assigned_to__isnull=True, queue=queue)
        name = queue
        row = Queue.objects.filter(name=queue).first()
    waiting = Alert.objects.filter(mine, state__in=Alert.WAITING_STATES).select_related(
        "customer", "rule", "assigned_to"
    )
    to_do = waiting.filter(planned_on__isnull=False).order_by("-priority", "id")
    watching = waiting.filter(planned_on__isnull=True).order_by("-priority", "id")
    after, until = day_bounds(day)
    done = Alert.objects.filter(mine, handled_at__gt=after, handled_at__lte=until)
    return TodaysQueue(
        name=name,
        capacity=row.daily_capacity if row else DEFAULT_DAILY_CAPACITY,
        to_do=to_do,
        watching=watching,
        to_do_count=to_do.count(),
        watching_count=watching.count(),
        done_today=done.count(),
    )


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


def recommended_skus(run: ScoringRun, customer_ids: np.ndarray) -> pd.Series:
    """The SKUs the scoring run picked for each customer (see ``ml.recommendations``):
    bestsellers of their favourite category they do not own yet, or the shop's
    bestsellers for customers without product history. JSON list text per customer id,
    built column-wise (half a million customers at once after a scoring run)."""
    ids = pd.Index(customer_ids, dtype="int64")
    picks = run_picks(run).reindex(ids).fillna(NO_PICK).to_numpy(np.int64)
    wanted = np.unique(picks[picks != NO_PICK])
    skus = dict(Product.objects.filter(pk__in=wanted.tolist()).values_list("pk", "sku"))
    known = np.array(sorted(skus), dtype=np.int64)
    if known.size == 0:
        return pd.Series("[]", index=ids, dtype=TEXT)
    # Escaped once per product: SKUs are the shop's own text.
    escaped = np.array([json.dumps(skus[p])[1:-1] for p in known.tolist()], dtype=object)
    slot = positions(known, picks)
    found = known[slot] == picks
    slots = pd.DataFrame(
        {
            i: pd.array(np.where(found[:, i], escaped[slot[:, i]], None), dtype=TEXT)
            for i in range(picks.shape[1])
        },
        index=ids,
    )
    return as_json_lists(slots)


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
