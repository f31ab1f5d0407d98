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
from django.db.models import (
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    prefetch_related_objects,
)

from core.sql import (
    NumbersQuery,
    placeholders,
    read_frame,
    read_numbers,
    staged_ids,
    timestamp_param,
)
from core.time import cutoff_of
from customers.models import Customer, Event, Order, Product
from ml.grouping import positions
from ml.models import CustomerScore, RiskTier, ScoringRun, Stage
from ml.reasons import TEXT, as_json_lists
from ml.recommendations import NO_PICK
from ml.selectors import active_definition, run_picks, score_history
from retention.learning import UpliftLearner, as_response
from retention.models import (
    DEFAULT_DAILY_CAPACITY,
    SHARED_QUEUE,
    AgentCapacity,
    Alert,
    AuditEntry,
    Campaign,
    CampaignOutcome,
    CaseReason,
    Coupon,
    Intervention,
    OutboxMessage,
    Queue,
    RiskRule,
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


@dataclass(frozen=True)
class CaseFilters:
    """What a list is narrowed to (the console's filters); empty means everything. A
    rule matches a case that lists it among its reasons, not only the one titling it; a
    campaign, a case with an offer of it."""

    tier: str = ""
    stage: str = ""
    rule: int | None = None
    campaign: int | None = None

    def narrow(self, cases: QuerySet[Alert]) -> QuerySet[Alert]:
        if self.tier:
            cases = cases.filter(tier=self.tier)
        if self.stage:
            cases = cases.filter(stage=self.stage)
        if self.rule:
            cases = cases.filter(
                Exists(CaseReason.objects.filter(alert=OuterRef("pk"), rule_id=self.rule))
            )
        if self.campaign:
            cases = cases.filter(
                Exists(Intervention.objects.filter(alert=OuterRef("pk"), campaign_id=self.campaign))
            )
        return cases


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


def _count(cases: QuerySet[Alert], cap: int | None) -> int:
    """How many; with ``cap``, at most cap + 1, read in the list's order, so the read
    stays on the list's partial index and stops there (a read in any order may start
    with years of closed cases)."""
    if cap is None:
        return cases.count()
    return cases.values("pk")[: cap + 1].count()


def todays_queue(
    *,
    day: dt.date,
    queue: str | None = None,
    agent=None,
    filters: CaseFilters | None = None,
    count_cap: int | None = None,
) -> TodaysQueue:
    """An agent's list (their assigned cases) or a queue's (its unassigned ones), narrowed
    by ``filters``. Each part reads a partial index that holds only waiting cases in
    priority order. With ``count_cap`` every count stops past it: a queue of a million-
    customer shop watches hundreds of thousands of cases, and an exact count walks them
    all."""
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
    after, until = day_bounds(day)
    waiting = Alert.objects.filter(mine, state__in=Alert.WAITING_STATES)
    done = Alert.objects.filter(mine, handled_at__gt=after, handled_at__lte=until)
    if filters is not None:
        waiting, done = filters.narrow(waiting), filters.narrow(done)
    waiting = waiting.select_related("customer", "rule", "assigned_to")
    to_do = waiting.filter(planned_on__isnull=False).order_by("-priority", "id")
    watching = waiting.filter(planned_on__isnull=True).order_by("-priority", "id")
    return TodaysQueue(
        name=name,
        capacity=row.daily_capacity if row else DEFAULT_DAILY_CAPACITY,
        to_do=to_do,
        watching=watching,
        to_do_count=_count(to_do, count_cap),
        watching_count=_count(watching, count_cap),
        done_today=_count(done, count_cap),
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
    """The generator's average effect on the treated of a campaign assigned on ``as_of``
    (:func:`customers.synthetic.selectors.true_offer_effects` per treated customer who
    received the offer, 0 for those who received nothing). Synthetic shops only (the
    benchmark's yardstick for the measured uplift)."""
    from customers.synthetic.selectors import true_offer_effects

    treated = pd.DataFrame.from_records(
        list(
            Intervention.objects.filter(campaign=campaign, arm=Intervention.Arm.TREATMENT).values(
                "customer_id", "offer_type", "sent_at"
            )
        ),
        columns=["customer_id", "offer_type", "sent_at"],
    )
    if treated.empty:
        return 0.0
    t = true_offer_effects(treated, as_of=as_of, window_days=campaign.window_days)
    effect = t["effect"].to_numpy(float)
    effect[t["sent_at"].isna().to_numpy()] = 0.0
    return float(effect.mean())


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
    learner = pickle.loads(blob)  # written by retention.services.learning and verified above
    # A learner pickled by an earlier release answers nothing until learning runs again.
    return learner if getattr(learner, "format", 1) == UpliftLearner.FORMAT else None


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


# --- The console's reads ----------------------------------------------------------------

COUNT_CAP = 1000  # counts above this show as "1,000+": exact counts would walk whole lists
DECISIONS = ("approved", "edited", "dismissed", "resolved", "assigned", "acknowledged")


@dataclass
class CaseCard:
    """One case as the console shows it: the case (with its customer, title rule and
    assignee), every rule it lists, and the offer it shows (``case_offers``)."""

    case: Alert
    reasons: list[CaseReason]
    offer: Intervention | None

    @property
    def undecided(self) -> bool:
        return self.offer is not None and self.offer.state == Intervention.State.PROPOSED

    @property
    def message(self) -> OutboxMessage | None:
        """The offer's newest outbox message, once it was queued."""
        if self.offer is None:
            return None
        messages = sorted(self.offer.messages.all(), key=lambda m: m.pk)
        return messages[-1] if messages else None


def case_cards(cases: Sequence[Alert]) -> list[CaseCard]:
    """Cards of these cases, in this order, in three queries whatever their number."""
    ids = [case.pk for case in cases]
    offers, reasons = case_offers(ids), case_reasons(ids)
    prefetch_related_objects(list(offers.values()), "messages")
    return [CaseCard(case, reasons[case.pk], offers.get(case.pk)) for case in cases]


def case_card(*, alert_id: int) -> CaseCard:
    """One case's card as it stands now (after an action on it)."""
    return case_cards([alert_for_card(alert_id)])[0]


@dataclass
class TodayList:
    """A queue's or agent's list as the Today page shows it: its counts (bounded at
    ``COUNT_CAP``) and the cards of one page of the to-do list and of the top watched."""

    lists: TodaysQueue
    to_do: list[CaseCard]
    watching: list[CaseCard]
    more: bool  # the to-do list goes on past this page


def today_list(
    *,
    day: dt.date,
    filters: CaseFilters,
    queue: str | None = None,
    agent=None,
    page: int = 1,
    per_page: int = 25,
    watched: int = 10,
) -> TodayList:
    """The ``page`` of the day's to-do list and the ``watched`` most valuable cases
    waiting beyond capacity, for a queue or an agent (``todays_queue``)."""
    lists = todays_queue(day=day, queue=queue, agent=agent, filters=filters, count_cap=COUNT_CAP)
    start = (page - 1) * per_page
    to_do = _rows(lists.to_do, start, start + per_page + 1)
    shown = to_do[:per_page]
    cards = case_cards(shown + _rows(lists.watching, 0, watched))
    return TodayList(
        lists=lists,
        to_do=cards[: len(shown)],
        watching=cards[len(shown) :],
        more=len(to_do) > per_page,
    )


def _rows(cases: QuerySet[Alert], start: int, stop: int) -> list[Alert]:
    """Rows ``start:stop`` of a priority-ordered list: the ids first, read from the list's
    partial index alone, then those rows with what they join. Asked in one query, the
    planner walks the whole queue and sorts it whenever the table's statistics lag behind
    a night's bulk writes (seen at a million customers: 0.5 s instead of 1 ms)."""
    ids = list(cases.values_list("id", flat=True)[start:stop])
    found = cases.order_by().in_bulk(ids)
    return [found[i] for i in ids]


def today_choices() -> dict[str, list[tuple[str, str]]]:
    """The values Today's filters offer: the queues (the shared one first, as the team
    list shown when none is chosen), every rule (an inactive one may still be listed on
    open cases, and its admin page links here), the active campaigns."""
    names = {SHARED_QUEUE, *Queue.objects.values_list("name", flat=True)}
    queues = sorted(names, key=lambda n: (n != SHARED_QUEUE, n))
    return {
        "queue": [(q, q) for q in queues],
        "tier": list(RiskTier.choices),
        "stage": list(Stage.choices),
        "rule": [(str(r.pk), r.name) for r in RiskRule.objects.order_by("-is_active", "name")],
        "campaign": [
            (str(c.pk), c.name)
            for c in Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("name")
        ],
    }


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # order, event, alert, offer, message
    text: str


@dataclass
class CustomerStory:
    """Everything the customer page shows about one customer."""

    customer: Customer
    score: CustomerScore | None
    history: list[CustomerScore]  # oldest first
    case: Alert | None  # the open one (a customer has at most one)
    offers: list[Intervention]  # newest first, with campaign, messages and coupon
    orders: int
    spend: float
    last_order: dt.datetime | None
    timeline: list[TimelineItem]
    activity: list[AuditEntry]  # what staff did about the customer, newest first

    @property
    def open_offer(self) -> Intervention | None:
        return next((o for o in self.offers if o.state == Intervention.State.PROPOSED), None)


_EVENT_KINDS = ("review", "support_ticket", "login", "add_to_cart")


def customer_story(customer: Customer, *, timeline_size: int = 40) -> CustomerStory:
    """One customer's risk, reasons, history and everything done about them, read through
    the per-customer indexes (scores by customer and run, orders and events by customer
    and time, interventions and alerts by customer)."""
    history = list(score_history(customer.pk)[:ML_HISTORY])
    paid = Order.objects.filter(customer=customer, status=Order.Status.PAID)
    totals = paid.aggregate(n=Count("pk"), spend=Sum("total"), last=Max("placed_at"))
    offers = list(
        Intervention.objects.filter(customer=customer)
        .select_related("campaign", "decided_by", "coupon", "converted_order")
        .prefetch_related("messages")
        .order_by("-proposed_at", "-pk")[:20]
    )
    alerts = list(
        Alert.objects.filter(customer=customer)
        .select_related("rule", "assigned_to")
        .order_by("-raised_at", "-pk")[:20]
    )
    timeline = [
        TimelineItem(
            o.placed_at,
            "order",
            f"order {o.external_id}: {o.total} {o.currency}, {o.get_status_display().lower()}",
        )
        for o in Order.objects.filter(customer=customer).order_by("-placed_at")[:timeline_size]
    ]
    for kind in _EVENT_KINDS:
        for e in Event.objects.filter(customer=customer, kind=kind).order_by("-occurred_at")[:10]:
            rating = f" ({e.value:g} of 5)" if kind == "review" and e.value is not None else ""
            timeline.append(TimelineItem(e.occurred_at, "event", e.get_kind_display() + rating))
    for a in alerts:
        timeline.append(TimelineItem(a.raised_at, "alert", f"alert raised: {a.rule.name}"))
        if a.closed_at:
            timeline.append(
                TimelineItem(
                    a.closed_at, "alert", f"alert {a.get_state_display().lower()}: {a.rule.name}"
                )
            )
    for o in offers:
        timeline.append(
            TimelineItem(
                o.proposed_at,
                "offer",
                f"offer proposed ({o.campaign.name}, {o.get_arm_display().lower()})",
            )
        )
        if o.decided_at:
            who = o.decided_by.get_username() if o.decided_by else "automatic approval"
            timeline.append(
                TimelineItem(
                    o.decided_at, "offer", f"offer {o.get_state_display().lower()} by {who}"
                )
            )
        for m in o.messages.all():
            if m.sent_at:
                timeline.append(
                    TimelineItem(
                        m.sent_at,
                        "message",
                        f"{m.get_channel_display()} sent: {m.subject or m.body[:60]}",
                    )
                )
        if o.converted_order_id:
            timeline.append(
                TimelineItem(
                    o.converted_order.placed_at,
                    "offer",
                    "converted: ordered within the campaign window",
                )
            )
    timeline.sort(key=lambda item: item.at, reverse=True)
    activity = list(
        AuditEntry.objects.filter(actor__isnull=False)
        .filter(Q(alert__customer=customer) | Q(intervention__customer=customer))
        .select_related("actor")
        .order_by("-at", "-pk")[:20]
    )
    return CustomerStory(
        customer=customer,
        score=history[0] if history else None,
        history=history[::-1],
        case=next((a for a in alerts if a.state in Alert.OPEN_STATES), None),
        offers=offers,
        orders=totals["n"] or 0,
        spend=float(totals["spend"] or 0),
        last_order=totals["last"],
        timeline=timeline[:timeline_size],
        activity=activity,
    )


ML_HISTORY = 30  # scores shown in a customer's history (runs beyond the kept ones are gone)


@dataclass
class CampaignReport:
    campaign: Campaign
    outcomes: list[CampaignOutcome]  # oldest first
    funnel: list[tuple[str, int]]  # (state label, offers) in workflow order
    arms: dict[str, int]
    committed_cost: float
    discounts: float

    @property
    def latest(self) -> CampaignOutcome | None:
        return self.outcomes[-1] if self.outcomes else None


_FUNNEL = (
    Intervention.State.PROPOSED,
    Intervention.State.APPROVED,
    Intervention.State.EDITED,
    Intervention.State.QUEUED,
    Intervention.State.SENT,
    Intervention.State.DELIVERED,
    Intervention.State.CONVERTED,
    Intervention.State.EXPIRED,
    Intervention.State.DISMISSED,
    Intervention.State.BLOCKED,
    Intervention.State.FAILED,
    Intervention.State.HELD_OUT,
)


def campaign_report(campaign: Campaign) -> CampaignReport:
    """A campaign's measured outcomes over time, its offers by state and what it cost."""
    by_state = dict(
        Intervention.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    arms = dict(
        Intervention.objects.filter(campaign=campaign)
        .values_list("arm")
        .annotate(n=Count("pk"))
        .values_list("arm", "n")
    )
    _, committed = campaign_commitments(campaign)
    discounts = Coupon.objects.filter(
        intervention__campaign=campaign, redeemed_at__isnull=False
    ).aggregate(total=Sum("discount"))["total"]
    return CampaignReport(
        campaign=campaign,
        outcomes=list(campaign.outcomes.order_by("as_of")),
        funnel=[(Intervention.State(s).label, by_state.get(s, 0)) for s in _FUNNEL],
        arms=arms,
        committed_cost=committed,
        discounts=float(discounts or 0),
    )


def campaign_list() -> list[tuple[Campaign, CampaignOutcome | None]]:
    campaigns = list(Campaign.objects.select_related("target_rule").order_by("-starts_on", "name"))
    latest: dict[int, CampaignOutcome] = {}
    for outcome in CampaignOutcome.objects.filter(campaign__in=campaigns).order_by("as_of"):
        latest[outcome.campaign_id] = outcome
    return [(c, latest.get(c.pk)) for c in campaigns]


@dataclass
class Overview:
    tiers: dict[str, int]
    run_as_of: dt.date | None
    value_at_risk: list[tuple[dt.date, float]]  # per finished run, oldest first
    alert_states: dict[str, int]
    raised: list[tuple[dt.date, dict[str, int]]]  # per day: alerts raised per rule
    handled: list[tuple[dt.date, int]]  # per day: staff decisions
    rules: list[str]
    workload: list[tuple[str, int]]  # open alerts per assignee
    messages: list[tuple[str, dict[str, int]]]  # per channel: messages per state
    days: int


OVERVIEW_SECONDS = 60  # how old the admins' dashboard may be


def overview(*, now: dt.datetime, days: int = 30) -> Overview:
    """The shop at a glance for admins, at most a minute old: its per-day counts group
    a month of alerts, which at a million customers is millions of rows, and nobody
    needs them fresher. Finished runs never change, so each run's value at risk is summed
    once and kept."""
    from django.core.cache import cache

    return cache.get_or_set(
        f"console:overview:{days}", lambda: _overview(now=now, days=days), OVERVIEW_SECONDS
    )


def _overview(*, now: dt.datetime, days: int) -> Overview:
    from django.core.cache import cache

    since = now - dt.timedelta(days=days)
    runs = list(ScoringRun.objects.filter(status=ScoringRun.Status.DONE).order_by("as_of", "pk"))
    value = []
    for run in runs[-ML_HISTORY:]:
        total = cache.get_or_set(
            f"console:run-value-at-risk:{run.pk}",
            lambda run=run: float(
                CustomerScore.objects.filter(run=run).aggregate(v=Sum("value_at_risk"))["v"] or 0
            ),
            timeout=None,
        )
        value.append((run.as_of, total))
    rules = dict(RiskRule.objects.values_list("pk", "name"))
    raised: dict[dt.date, dict[str, int]] = {}
    for day, rule_id, n in (
        Alert.objects.filter(raised_at__gte=since)
        .values_list("as_of", "rule_id")
        .annotate(n=Count("pk"))
        .values_list("as_of", "rule_id", "n")
    ):
        raised.setdefault(day, {})[rules.get(rule_id, "?")] = n
    handled: dict[dt.date, int] = {}
    for at in AuditEntry.objects.filter(
        at__gte=since, actor__isnull=False, action__in=DECISIONS
    ).values_list("at", flat=True):
        handled[at.date()] = handled.get(at.date(), 0) + 1
    workload = [
        (username or "?", n)
        for username, n in Alert.objects.filter(
            state__in=Alert.OPEN_STATES, assigned_to__isnull=False
        )
        .values_list("assigned_to__username")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("assigned_to__username", "n")
    ]
    messages: dict[str, dict[str, int]] = {}
    for channel, state, n in (
        OutboxMessage.objects.filter(created_at__gte=since)
        .values_list("channel", "state")
        .annotate(n=Count("pk"))
        .values_list("channel", "state", "n")
    ):
        messages.setdefault(channel, {})[state] = n
    latest = runs[-1] if runs else None
    states = dict(
        Alert.objects.filter(state__in=Alert.OPEN_STATES)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    return Overview(
        tiers=dict(latest.tier_counts) if latest else {},
        run_as_of=latest.as_of if latest else None,
        value_at_risk=value,
        alert_states=states,
        raised=sorted(raised.items()),
        handled=sorted(handled.items()),
        rules=sorted({r for per in raised.values() for r in per}),
        workload=workload,
        messages=sorted(messages.items()),
        days=days,
    )


def champion_history(*, limit: int = 20) -> list[AuditEntry]:
    """Changes of champion model, newest first, with who made them."""
    return list(
        AuditEntry.objects.filter(
            action__in=[AuditEntry.Action.MODEL_PROMOTED, AuditEntry.Action.MODEL_ROLLED_BACK]
        )
        .select_related("actor")
        .order_by("-at", "-pk")[:limit]
    )
