"""Reads of the retention workflow."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import F, Q, QuerySet, Sum

from core.sql import (
    NumbersQuery,
    placeholders,
    read_frame,
    read_numbers,
    staged_ids,
    timestamp_param,
)
from core.time import cutoff_of
from customers.models import Product
from ml.grouping import positions
from ml.models import ScoringRun
from ml.reasons import TEXT, as_json_lists
from ml.recommendations import NO_PICK
from ml.selectors import active_definition, run_picks
from retention.learning import UpliftLearner, as_response
from retention.models import (
    DEFAULT_DAILY_CAPACITY,
    AgentCapacity,
    Alert,
    Campaign,
    CaseReason,
    Intervention,
    Queue,
    UpliftModel,
)
from retention.offers import OfferOption
from retention.qini import Qini, qini
from retention.sequential import Sequential, campaign_sequential

LEARN_DAYS = 365  # older outcomes describe a shop that has moved on


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
    (``core.time.moment``)."""
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


def intervention_outcomes(assigned: pd.DataFrame, *, cutoff: dt.datetime) -> pd.DataFrame:
    """Per intervention (``id``, ``customer_id``, ``proposed_at``, ``window_days``): the
    qualifying orders and spend in ``(proposed_at, proposed_at + window]`` seen before
    ``cutoff``, and whether the customer was ``retained`` (ordered at all). The one
    definition of "retained" that campaign outcomes and uplift learning share."""
    columns = ["id", "total", "orders", "retained"]
    if assigned.empty:
        return pd.DataFrame(columns=columns)
    statuses = list(active_definition().qualifying_statuses)
    with staged_ids("retention_campaign_customers", assigned["customer_id"].unique()) as staged:
        orders = read_frame(
            f"""
            SELECT o.customer_id, o.placed_at, CAST(o.total AS DOUBLE PRECISION) AS total
            FROM {staged} s JOIN customers_order o ON o.customer_id = s.id
            WHERE o.placed_at > %s AND o.placed_at < %s AND o.status IN ({placeholders(statuses)})
            """,
            [timestamp_param(assigned["proposed_at"].min()), timestamp_param(cutoff), *statuses],
        )
    orders["placed_at"] = pd.to_datetime(orders["placed_at"], utc=True)
    assigned = assigned[["id", "customer_id", "proposed_at", "window_days"]].copy()
    assigned["proposed_at"] = pd.to_datetime(assigned["proposed_at"], utc=True)
    window = pd.to_timedelta(assigned["window_days"], unit="D")
    assigned["window_end"] = assigned["proposed_at"] + window
    joined = assigned.merge(orders, on="customer_id", how="left")
    inside = (joined["placed_at"] > joined["proposed_at"]) & (
        joined["placed_at"] <= joined["window_end"]
    )
    joined["total"] = joined["total"].where(inside, 0.0)
    joined["orders"] = inside.astype(int)
    per = joined.groupby("id", as_index=False)[["total", "orders"]].sum()
    per["retained"] = per["orders"] > 0
    return per[columns]


def finished_interventions(
    *, as_of: dt.date, days: int | None = LEARN_DAYS, campaign: Campaign | None = None
) -> pd.DataFrame:
    """Interventions whose window closed by ``as_of``, proposed in the last ``days`` (of
    one ``campaign``, or all), with ``treated`` and ``retained``, the scoring day, the
    uplift expected when proposed and the risk tier they were proposed at. Only closed
    windows count, so nobody is judged on half an outcome."""
    cutoff = cutoff_of(as_of)
    columns = [
        "id",
        "arm",
        "customer_id",
        "proposed_at",
        "offer_id",
        "probability",
        "as_of",
        "expected_uplift",
        "exploration",
    ]
    rows = Intervention.objects.filter(proposed_at__lte=cutoff)
    if days is not None:
        rows = rows.filter(proposed_at__gt=cutoff - dt.timedelta(days=days))
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    rows = rows.values(*columns, window_days=F("campaign__window_days"))
    frame = pd.DataFrame.from_records(list(rows), columns=[*columns, "window_days"])
    if frame.empty:
        return frame.assign(treated=[], retained=[], tier=[])
    proposed = pd.to_datetime(frame["proposed_at"], utc=True)
    frame = frame[proposed + pd.to_timedelta(frame["window_days"], unit="D") <= cutoff]
    outcomes = intervention_outcomes(frame, cutoff=cutoff)
    frame = frame.merge(outcomes[["id", "retained"]], on="id")
    definition = active_definition()
    p = frame["probability"].to_numpy(float)
    frame["tier"] = np.select(
        [p >= definition.high_threshold, p >= definition.medium_threshold],
        ["high", "medium"],
        "low",
    )
    frame["treated"] = frame["arm"] == Intervention.Arm.TREATMENT
    frame["retained"] = frame["retained"].astype(bool)
    return frame.reset_index(drop=True)


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


@dataclass
class Responses:
    """Per customer (rows) and offer (columns): ``response``, the ``r`` that
    ``best_offers`` weighs, and ``uplift``, the retention in the window each offer is
    expected to add. ``source`` says where each column came from."""

    response: np.ndarray
    uplift: np.ndarray
    source: list[str]


def latest_uplift_model(*, as_of: dt.date) -> UpliftModel | None:
    """What was learned by ``as_of`` at the latest (a replayed day never sees later)."""
    return UpliftModel.objects.filter(as_of__lte=as_of).order_by("-as_of", "-id").first()


def load_learner(model: UpliftModel) -> UpliftLearner | None:
    """The per-customer learner, after checking it is byte for byte what was fitted."""
    blob = bytes(model.artifact or b"")
    if not blob:
        return None
    if hashlib.sha256(blob).hexdigest() != model.checksum:
        raise ValueError(f"uplift model #{model.pk}: artefact checksum mismatch, refusing to load")
    return pickle.loads(blob)  # written by retention.services.learning and verified above


def offer_responses(options: Sequence[OfferOption], targets: pd.DataFrame, *, as_of: dt.date):
    """The response matrix for ``targets`` (a run frame's rows) and ``options``: the
    per-customer model where it learned the offer, else the offer's learned effect for
    the customer's risk tier or overall, else the admin's prior (times the churn
    probability, as uplift)."""
    n, k = len(targets), len(options)
    p = np.clip(targets["probability"].to_numpy(float), 0, 1)
    response = np.tile(np.array([o.expected_response for o in options], dtype=float), (n, 1))
    uplift = response * p[:, None]
    source = ["prior"] * k
    model = latest_uplift_model(as_of=as_of)
    if model is None or n == 0:
        return Responses(response, uplift, source)
    tier = targets["tier"].to_numpy() if "tier" in targets else np.full(n, "")
    for j, option in enumerate(options):
        effect = model.effects.get(str(option.id))
        if not effect or not effect["treated"]:
            continue
        response[:, j], uplift[:, j] = effect["response"], effect["effect"]
        source[j] = "offer"
        for name, part in effect.get("tiers", {}).items():
            mine = tier == name
            response[mine, j], uplift[mine, j] = part["response"], part["effect"]
    learner = load_learner(model)
    if learner is not None:
        X = targets.reindex(columns=model.features).to_numpy(float)
        tau = learner.predict(X, [o.id for o in options])
        learned = ~np.isnan(tau[0]) if n else np.zeros(k, dtype=bool)
        if learned.any():
            r = as_response(tau, learner.baseline(X))
            response[:, learned], uplift[:, learned] = r[:, learned], tau[:, learned]
            for j in np.flatnonzero(learned):
                source[j] = "customer"
    return Responses(response, uplift, source)


@dataclass
class CampaignUplift:
    """How well a campaign's targeting worked and whether to keep it, from the customers
    whose window has closed: the Qini curve of the uplift predicted at proposal (None
    until some were proposed with one) and the always-valid keep / stop / not yet."""

    finished: int
    qini: Qini | None
    sequential: Sequential


def campaign_uplift(campaign: Campaign, *, as_of: dt.date) -> CampaignUplift:
    done = finished_interventions(as_of=as_of, days=None, campaign=campaign)
    treated = done["treated"].to_numpy(bool) if len(done) else np.zeros(0, dtype=bool)
    retained = done["retained"].to_numpy(bool) if len(done) else np.zeros(0, dtype=bool)
    sequential = campaign_sequential(
        treated=int(treated.sum()),
        treated_retained=int((retained & treated).sum()),
        control=int((~treated).sum()),
        control_retained=int((retained & ~treated).sum()),
    )
    scored = done["expected_uplift"].notna().to_numpy() if len(done) else treated
    curve = None
    if scored.any() and treated.any() and (~treated).any():
        curve = qini(
            done["expected_uplift"].to_numpy(float),
            retained,
            treated,
            seed=campaign.pk,
        )
    return CampaignUplift(finished=len(done), qini=curve, sequential=sequential)
