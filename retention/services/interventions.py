"""Interventions: proposed in bulk after a scoring run, decided by an agent (or
automatically), queued through the contact policy into the outbox, and settled as
converted or expired. Every transition writes an audit row with its actor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import transaction

from core.bulk import copy_frame, foreign_keys_checked_in_bulk, reserve_ids
from customers.models import OfferType
from ml.models import ScoringRun, Stage
from ml.reasons import TEXT
from ml.selectors import run_frame
from retention import messages
from retention.models import Alert, AuditEntry, Campaign, Coupon, Intervention, Offer, OutboxMessage
from retention.offers import OfferOption, best_offers, net_values, stable_unit, within_limits
from retention.policy import contact_decisions
from retention.selectors import (
    active_campaigns,
    campaign_commitments,
    campaign_customers,
    customers_with_open_case_of_rule,
    offer_responses,
    open_cases,
    recommended_skus,
)
from retention.services.alerts import alerts_dismiss_open
from retention.services.audit import RULE, Action, Actor, audit_write
from retention.services.outbox import outbox_announce

ALREADY_DECIDED = "already {state} by {who} at {at:%Y-%m-%d %H:%M}"
NOT_AN_OPTION = "{offer_type} is not one of this campaign's offers"
_BATCH = 2000
# The audit action of each arm's first state, and of each decision.
_PROPOSED = {
    Intervention.State.PROPOSED: Action.PROPOSED,
    Intervention.State.HELD_OUT: Action.HELD_OUT,
}
_DECIDED = {Intervention.State.APPROVED: Action.APPROVED, Intervention.State.EDITED: Action.EDITED}


class AlreadyDecided(Exception):
    """Someone (maybe the same agent, tapping twice) decided this intervention already."""


class OfferOutOfLimits(ValueError):
    """An edited offer is not allowed by the campaign; the message names what is."""


# --- Proposing, in bulk after a scoring run ----------------------------------------------


@dataclass
class Proposed:
    treatment: int = 0
    control: int = 0
    over_budget: int = 0
    queued: dict[str, int] = field(default_factory=dict)


def interventions_propose(
    *, run: ScoringRun, now: dt.datetime, frame: pd.DataFrame | None = None
) -> dict[str, Proposed]:
    """For every active campaign, one intervention per newly targeted customer: the best
    offer by expected net value with the learned response (or, for the campaign's
    exploration share, a random eligible one), in the treatment or the control arm by a
    stable hash, attached to the customer's open case if they have one. ``frame`` is the
    run's frame if the caller has read it already.

    Customers already in the campaign are skipped, so re-running a night adds nothing.
    Lost customers are left to campaigns that target them (the automatic win-back) unless
    a campaign includes them. Automatic campaigns queue their treatment arm at once.
    """
    frame = run_frame(run) if frame is None else frame
    results = {}
    campaigns = list(active_campaigns(as_of=run.as_of))
    cases = open_cases() if campaigns else pd.Series(dtype="int64")
    for campaign in campaigns:
        with transaction.atomic():
            result = _propose(campaign, frame, cases, run, now)
        if campaign.approval_mode == Campaign.Approval.AUTOMATIC:
            result.queued = _approve_automatically(campaign, now)
        results[campaign.name] = result
    return results


def _targets(campaign: Campaign, frame: pd.DataFrame, cases: pd.Series) -> pd.DataFrame:
    if campaign.target_rule_id is not None:
        listed = customers_with_open_case_of_rule(campaign.target_rule_id)
        targets = frame[frame.index.isin(listed)]
    elif campaign.target_tier:
        targets = frame[frame["tier"] == campaign.target_tier]
    else:
        targets = frame[frame["stage"] == campaign.target_stage]
    if not campaign.targets_lost:
        targets = targets[targets["stage"] != Stage.LOST]
    targets = targets[~targets.index.isin(campaign_customers(campaign))]
    return targets.assign(alert_id=cases.reindex(targets.index).to_numpy(float))


EXPLORE_SALT, PICK_SALT = 1, 2


def _propose(
    campaign: Campaign, frame: pd.DataFrame, cases: pd.Series, run: ScoringRun, now
) -> Proposed:
    options = within_limits(
        [OfferOption.of(o) for o in campaign.offers.all() if o.is_active],
        max_percent_off=campaign.max_percent_off,
        max_fixed_amount=campaign.max_fixed_amount,
        max_loyalty_points=campaign.max_loyalty_points,
    )
    targets = _targets(campaign, frame, cases)
    if targets.empty or not options:
        return Proposed()
    learned = offer_responses(options, targets, as_of=run.as_of)
    scores = {
        "probability": targets["probability"].to_numpy(float),
        "value_at_risk": targets["value_at_risk"].to_numpy(float),
        "order_value": targets["monetary_avg"].to_numpy(float),
    }
    choice = best_offers(options, **scores, response=learned.response)
    customer_ids = targets.index.to_numpy(np.int64)
    chosen = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "alert_id": targets["alert_id"].to_numpy(),
            "option": choice.index,
            "net": choice.net_value,
            "cost": choice.cost,
            "uplift": learned.uplift[np.arange(len(choice.index)), choice.index],
            "exploration": stable_unit(campaign.pk, customer_ids, salt=EXPLORE_SALT)
            < campaign.exploration_share,
            "probability": scores["probability"],
            "value_at_risk": scores["value_at_risk"],
        }
    )
    # Who is targeted, and in what order, is the best offer's call.
    chosen = chosen[chosen["net"] > 0].sort_values("net", ascending=False, kind="stable")
    _explore(campaign, chosen, options, learned, scores, targets.index)
    control = stable_unit(campaign.pk, chosen["customer_id"].to_numpy()) < campaign.control_share
    chosen["arm"] = np.where(control, Intervention.Arm.CONTROL, Intervention.Arm.TREATMENT)
    chosen, over_budget = _within_budget(campaign, chosen)
    if chosen.empty:
        return Proposed(over_budget=over_budget)
    _write(campaign, chosen, options, run, now)
    treated = int((chosen["arm"] == Intervention.Arm.TREATMENT).sum())
    return Proposed(treatment=treated, control=len(chosen) - treated, over_budget=over_budget)


def _explore(campaign, chosen: pd.DataFrame, options, learned, scores, index) -> None:
    """For the exploration share of the targeted customers, in both arms alike, record a
    random eligible offer instead of the best (with its own net value, cost and uplift),
    so treated and control customers of every offer stay comparable and every offer keeps
    being measured on every kind of customer. Changes ``chosen`` in place."""
    explore = chosen["exploration"].to_numpy(bool)
    if not explore.any():
        return
    ids = chosen["customer_id"].to_numpy(np.int64)[explore]
    pick = np.minimum(
        (stable_unit(campaign.pk, ids, salt=PICK_SALT) * len(options)).astype(int),
        len(options) - 1,
    )
    at = index.get_indexer(ids)
    net, costs = net_values(
        options,
        **{name: values[at] for name, values in scores.items()},
        response=learned.response[at],
    )
    rows = np.arange(len(ids))
    where = chosen.index[explore]
    chosen.loc[where, "option"] = pick
    chosen.loc[where, "net"] = net[rows, pick]
    chosen.loc[where, "cost"] = costs[rows, pick]
    chosen.loc[where, "uplift"] = learned.uplift[at, pick]


def _within_budget(campaign: Campaign, chosen: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The best customers first, up to the first treatment offer that would break a cap.

    Control customers come along in the same order, so the arms stay comparable: the
    cap decides who is targeted, the hash decides who is held out.
    """
    count, cost = campaign_commitments(campaign)
    treat = (chosen["arm"] == Intervention.Arm.TREATMENT).to_numpy()
    ok = np.ones(len(chosen), dtype=bool)
    if campaign.max_offers is not None:
        ok &= count + np.cumsum(treat) <= campaign.max_offers
    if campaign.max_discount_total is not None:
        spent = cost + np.cumsum(np.where(treat, chosen["cost"].to_numpy(), 0.0))
        ok &= spent <= float(campaign.max_discount_total)
    stop = len(chosen) if ok.all() else int(np.argmin(ok))
    return chosen.iloc[:stop], len(chosen) - stop


def _write(campaign, chosen: pd.DataFrame, options, run: ScoringRun, now) -> None:
    option = [options[i] for i in chosen["option"]]
    offer_type = pd.Series([o.offer_type for o in option], index=chosen.index)
    skus = pd.Series("[]", index=chosen.index, dtype=TEXT)
    wants = (offer_type == OfferType.PRODUCT_RECOMMENDATION) & (
        chosen["arm"] == Intervention.Arm.TREATMENT
    )
    if wants.any():
        skus[wants] = recommended_skus(run, chosen.loc[wants, "customer_id"].to_numpy()).array
    ids = reserve_ids(Intervention, len(chosen))
    state = np.where(
        chosen["arm"] == Intervention.Arm.CONTROL,
        Intervention.State.HELD_OUT.value,
        Intervention.State.PROPOSED.value,
    )
    frame = pd.DataFrame(
        {
            "id": ids,
            "campaign_id": campaign.pk,
            "customer_id": chosen["customer_id"].to_numpy(),
            "alert_id": chosen["alert_id"].astype("Int64").to_numpy(),
            "arm": chosen["arm"].to_numpy(),
            "state": state,
            "offer_id": [o.id for o in option],
            "offer_type": offer_type.to_numpy(),
            "offer_value": [o.value for o in option],
            "recommended_skus": skus.to_numpy(),
            "channel": "",
            "probability": chosen["probability"].to_numpy(),
            "value_at_risk": chosen["value_at_risk"].round(2).to_numpy(),
            "expected_net_value": chosen["net"].round(2).to_numpy(),
            "expected_cost": chosen["cost"].round(2).to_numpy(),
            "expected_uplift": chosen["uplift"].round(6).to_numpy(),
            "exploration": chosen["exploration"].to_numpy(bool),
            "as_of": run.as_of,
            "proposed_at": pd.Timestamp(now),
            "block_reason": "",
            "dismiss_reason": "",
            "updated_at": pd.Timestamp(now),
        }
    )
    with foreign_keys_checked_in_bulk(
        Intervention, AuditEntry, rows=len(frame), rebuild_indexes=True
    ):
        copy_frame(Intervention, frame)
        for arm_state, action in _PROPOSED.items():
            audit_write(
                actor=RULE,
                action=action,
                at=now,
                intervention_id=frame.loc[state == arm_state, "id"].tolist(),
                to_state=arm_state,
            )


def _approve_automatically(campaign: Campaign, now: dt.datetime) -> dict[str, int]:
    waiting = Intervention.objects.filter(campaign=campaign, state=Intervention.State.PROPOSED)
    ids = list(waiting.values_list("pk", flat=True))
    return interventions_approve(ids=ids, actor=RULE, now=now)


# --- Deciding: approve, edit, dismiss -----------------------------------------------------


def _who(intervention: Intervention) -> str:
    user = intervention.decided_by
    return user.get_username() if user else "the campaign's automatic approval"


def _undecided(intervention_id: int) -> Intervention:
    # ``decided_by`` is not joined here: a row locked after waiting for another decision is
    # re-read on PostgreSQL, but a joined row keeps the value from before the wait (no one),
    # and the slower agent would be told the automatic approval decided.
    intervention = (
        Intervention.objects.select_for_update(of=("self",))
        .select_related("campaign", "offer", "customer")
        .get(pk=intervention_id)
    )
    if intervention.state != Intervention.State.PROPOSED:
        raise AlreadyDecided(
            ALREADY_DECIDED.format(
                state=intervention.get_state_display().lower(),
                who=_who(intervention),
                at=intervention.decided_at or intervention.updated_at,
            )
        )
    return intervention


def intervention_approve(*, intervention_id: int, actor: Actor, now: dt.datetime) -> Intervention:
    """Approve one proposed offer and queue it; raises :class:`AlreadyDecided` if someone
    got there first, so a double tap acts once."""
    with transaction.atomic():
        intervention = _undecided(intervention_id)
        _decide([intervention], Intervention.State.APPROVED, actor, now)
    intervention.refresh_from_db()
    return intervention


def intervention_edit(
    *,
    intervention_id: int,
    actor: Actor,
    now: dt.datetime,
    offer_type: str,
    offer_value: Decimal | str | int,
) -> Intervention:
    """Change the offer within the campaign's limits, then approve and queue it.

    This is the one place the limits are checked, whoever edits (bot, admin, console), so
    ``offer_value`` is taken as given, even as text: anything outside the campaign's range
    raises :class:`OfferOutOfLimits` naming the range, and kinds without a value (free
    shipping, product picks) keep their offer's value whatever was sent.
    """
    with transaction.atomic():
        intervention = _undecided(intervention_id)
        offer, value = _allowed_offer(intervention.campaign, offer_type, offer_value)
        before = (intervention.offer_type, str(intervention.offer_value))
        intervention.offer, intervention.offer_type = offer, offer_type
        intervention.offer_value = value
        audit_write(
            actor=actor,
            action=Action.EDITED,
            at=now,
            intervention_id=intervention.pk,
            from_state=intervention.state,
            to_state=Intervention.State.EDITED,
            detail={"from": before, "to": [offer_type, str(value)]},
        )
        _decide([intervention], Intervention.State.EDITED, actor, now, audit=False)
    intervention.refresh_from_db()
    return intervention


def _allowed_offer(campaign: Campaign, offer_type: str, raw: object) -> tuple[Offer, Decimal]:
    offer = campaign.offers.filter(offer_type=offer_type, is_active=True).first()
    if offer is None:
        raise OfferOutOfLimits(NOT_AN_OPTION.format(offer_type=offer_type))
    allowed = campaign.value_range(offer_type)
    if allowed is None:
        return offer, offer.value
    try:
        return offer, allowed.parse(raw)
    except ValueError as refused:
        raise OfferOutOfLimits(str(refused)) from None


def intervention_dismiss(
    *, intervention_id: int, actor: Actor, now: dt.datetime, reason: str
) -> Intervention:
    with transaction.atomic():
        intervention = _undecided(intervention_id)
        _dismiss([intervention], actor, now, reason)
    intervention.refresh_from_db()
    return intervention


def interventions_approve(*, ids, actor: Actor, now: dt.datetime) -> dict[str, int]:
    """Approve many (an admin action, an automatic campaign); those already decided are
    counted, not touched. Returns how many ended queued, blocked or were already decided."""
    counts = {"queued": 0, "blocked": 0, "already_decided": 0}
    ids = list(ids)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        with transaction.atomic():
            undecided = list(
                Intervention.objects.select_for_update(of=("self",))
                .select_related("campaign", "offer", "customer")
                .filter(pk__in=chunk, state=Intervention.State.PROPOSED)
            )
            counts["already_decided"] += len(chunk) - len(undecided)
            queued, blocked = _decide(undecided, Intervention.State.APPROVED, actor, now)
            counts["queued"] += queued
            counts["blocked"] += blocked
    return counts


def interventions_dismiss(*, ids, actor: Actor, now: dt.datetime, reason: str) -> int:
    with transaction.atomic():
        undecided = list(
            Intervention.objects.select_for_update().filter(
                pk__in=list(ids), state=Intervention.State.PROPOSED
            )
        )
        _dismiss(undecided, actor, now, reason)
    return len(undecided)


def _dismiss(interventions: list[Intervention], actor: Actor, now, reason: str) -> None:
    """Dismiss the offers and their open alerts: whichever surface dismissed the offer
    (bot, admin, console), the case is closed the same way."""
    for intervention in interventions:
        intervention.state = Intervention.State.DISMISSED
        intervention.dismiss_reason = reason[:200]
        intervention.decided_by, intervention.decided_at = actor.user, now
    Intervention.objects.bulk_update(
        interventions, ["state", "dismiss_reason", "decided_by", "decided_at", "updated_at"]
    )
    audit_write(
        actor=actor,
        action=Action.DISMISSED,
        at=now,
        intervention_id=[i.pk for i in interventions],
        alert_id=[i.alert_id for i in interventions],
        from_state=Intervention.State.PROPOSED,
        to_state=Intervention.State.DISMISSED,
        detail={"reason": reason},
    )
    alerts_dismiss_open(
        ids=[i.alert_id for i in interventions if i.alert_id], actor=actor, now=now, note=reason
    )


# --- Queueing through the contact policy ---------------------------------------------------


def _decide(interventions, decision: str, actor: Actor, now, audit: bool = True) -> tuple[int, int]:
    """Record the decision, then queue each message the contact policy allows and block
    the rest with its reason, all in the caller's transaction. The send tasks are enqueued
    on commit, so a worker never looks for a message that is not stored yet."""
    if not interventions:
        return 0, 0
    # (action, intervention, state before, state after, detail) of each audit row
    entries: list[tuple[Action, Intervention, str, str, dict | None]] = []
    for intervention in interventions:
        intervention.decided_by, intervention.decided_at = actor.user, now
        if audit:
            entries.append((_DECIDED[decision], intervention, intervention.state, decision, None))
        intervention.state = decision
    decisions = contact_decisions(
        [(i.customer_id, list(i.campaign.channels)) for i in interventions], now=now
    )
    templates: dict[tuple[str, str], object] = {}
    coupons, outbox = [], []
    for intervention, d in zip(interventions, decisions, strict=True):
        if d.blocked:
            intervention.state, intervention.block_reason = Intervention.State.BLOCKED, d.blocked
            entries.append(
                (Action.BLOCKED, intervention, decision, intervention.state, {"reason": d.blocked})
            )
            continue
        coupon = None
        if intervention.offer.needs_coupon:
            coupon = Coupon(
                customer_id=intervention.customer_id,
                intervention=intervention,
                offer_type=intervention.offer_type,
                value=intervention.offer_value,
                min_order_value=intervention.offer.min_order_value,
                expires_at=now + dt.timedelta(days=intervention.offer.valid_days),
            )
            coupons.append(coupon)
        key = (d.channel, intervention.offer_type)
        if key not in templates:
            templates[key] = messages.template_for(*key)
        subject, body = messages.render(
            templates[key], messages.context_for(intervention, intervention.customer, coupon)
        )
        outbox.append(
            OutboxMessage(
                intervention=intervention,
                channel=d.channel,
                recipient=d.recipient,
                subject=subject[:200],
                body=body,
                next_attempt_at=d.send_after or now,
                created_at=now,
            )
        )
        intervention.state, intervention.channel = Intervention.State.QUEUED, d.channel
        send_after = d.send_after.isoformat() if d.send_after else None
        entries.append(
            (
                Action.QUEUED,
                intervention,
                decision,
                intervention.state,
                {"channel": d.channel, "send_after": send_after},
            )
        )
    Coupon.objects.bulk_create(coupons)
    OutboxMessage.objects.bulk_create(outbox)
    Intervention.objects.bulk_update(
        interventions,
        [
            "state",
            "channel",
            "block_reason",
            "decided_by",
            "decided_at",
            "offer",
            "offer_type",
            "offer_value",
            "updated_at",
        ],
    )
    actions, targets, before, after, details = zip(*entries, strict=True)
    audit_write(
        actor=actor,
        action=actions,
        at=now,
        intervention_id=[i.pk for i in targets],
        alert_id=[i.alert_id for i in targets],
        from_state=before,
        to_state=after,
        detail=details,
    )
    Alert.objects.filter(
        pk__in=[i.alert_id for i in interventions if i.alert_id],
        state__in=Alert.WAITING_STATES,
    ).update(state=Alert.State.ACTIONED, handled_at=now)
    due = [m.pk for m in outbox if m.next_attempt_at <= now]
    if due:
        outbox_announce(due)
    return len(outbox), len(interventions) - len(outbox)
