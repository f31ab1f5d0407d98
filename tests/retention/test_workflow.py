"""From a scoring run to alerts, proposals, decisions and the contact policy (in-process;
the worker-backed paths are in test_sending.py and test_pipeline_task.py)."""

import datetime as dt
import json
import re

import numpy as np
import pytest

from customers.models import Event, Product
from ml.models import CustomerScore
from ml.selectors import active_definition
from retention.models import (
    Alert,
    AuditEntry,
    Coupon,
    Intervention,
    Offer,
    OutboxMessage,
    RiskRule,
    RuleCondition,
)
from retention.offers import AMOUNT_RANGE, PERCENT_RANGE, POINTS_RANGE
from retention.policy import CAP_7, NO_CHANNEL, OPTED_OUT, contact_decisions
from retention.selectors import recommended_skus
from retention.services.alerts import (
    alert_acknowledge,
    alerts_escalate,
    alerts_raise,
    alerts_resolve_won_back,
)
from retention.services.audit import Actor
from retention.services.interventions import (
    AlreadyDecided,
    OfferOutOfLimits,
    intervention_approve,
    intervention_dismiss,
    intervention_edit,
    interventions_approve,
    interventions_propose,
)
from retention.services.outcomes import interventions_settle
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run
from tests.ml.history import order

pytestmark = pytest.mark.django_db


@pytest.fixture
def at_risk():
    """Forty high-risk customers and one safe one, in one scoring run."""
    people = [customer(f"risky-{i}") for i in range(40)]
    safe = customer("safe")
    rows = [{"customer": c, "probability": 0.9, "monetary_avg": 60.0} for c in people]
    rows.append({"customer": safe, "probability": 0.1})
    return people, safe, scored_run(rows)


def test_rules_raise_one_alert_and_one_offer_per_customer_however_often_they_run(at_risk):
    people, safe, run = at_risk
    win_back = campaign()
    for _ in range(3):
        after_scoring(run=run, now=NOW)
    high = Alert.objects.filter(rule__name="High churn risk")
    assert high.count() == len(people) and not high.filter(customer=safe).exists()
    assert Intervention.objects.filter(campaign=win_back).count() == len(people)
    arms = set(Intervention.objects.values_list("arm", flat=True))
    assert arms == {"treatment", "control"}
    alert = high.first()
    assert alert.reasons == ["no order for 74 days"] and alert.tier == "high"


def test_a_rule_threshold_a_tier_an_alert_and_an_offer_see_one_probability_at_a_boundary():
    """In float32, 0.70000001 falls below the high tier's 0.7 and 0.399999999 rises to the
    medium tier's 0.4: rules read on a float32 copy of the scores disagreed with the tiers."""
    definition = active_definition()
    high, medium = definition.high_threshold, definition.medium_threshold
    just_high, just_low = high + 1e-8, medium - 1e-9
    assert float(np.float32(just_high)) < high and float(np.float32(just_low)) >= medium
    edge, below = customer("edge"), customer("below")
    rules = {}
    for name, threshold in (("at least high", high), ("at least medium", medium)):
        rules[name] = RiskRule.objects.create(name=name)
        RuleCondition.objects.create(
            rule=rules[name], field="probability", operator=">=", value=str(threshold)
        )
    run = scored_run(
        [{"customer": edge, "probability": just_high}, {"customer": below, "probability": just_low}]
    )
    win_back = campaign()  # targets "High churn risk": tier = high
    by_tier = campaign(name="By tier", target_rule=None, target_tier="high")

    after_scoring(run=run, now=NOW)

    scores = {s.customer_id: s for s in CustomerScore.objects.filter(run=run)}
    assert scores[edge.pk].tier == "high" and scores[below.pk].tier == "low"
    for rule in (*rules.values(), RiskRule.objects.get(name="High churn risk")):
        alerted = set(
            Alert.objects.filter(case_reasons__rule=rule).values_list("customer_id", flat=True)
        )
        assert alerted == {edge.pk}, rule.name
    offered = Intervention.objects.filter(campaign__in=[win_back, by_tier])
    assert set(offered.values_list("customer_id", flat=True)) == {edge.pk}
    seen = [*Alert.objects.values_list("probability", flat=True)]
    seen += offered.values_list("probability", flat=True)
    # One case (three rules are its reasons) and two offers.
    assert len(seen) == 3 and set(seen) == {scores[edge.pk].probability} == {just_high}


def test_a_closed_alert_is_not_raised_again_within_its_cooldown(at_risk):
    people, _, run = at_risk
    alerts_raise(run=run, now=NOW)
    alert = Alert.objects.get(rule__name="High churn risk", customer=people[0])
    alert.state, alert.closed_at = Alert.State.DISMISSED, NOW
    alert.save()
    alerts_raise(run=run, now=NOW + dt.timedelta(days=1))
    assert Alert.objects.filter(rule__name="High churn risk", customer=people[0]).count() == 1
    alerts_raise(run=run, now=NOW + dt.timedelta(days=15))
    assert Alert.objects.filter(rule__name="High churn risk", customer=people[0]).count() == 2


def test_unacknowledged_high_cases_on_a_to_do_list_escalate_after_the_rules_time(
    at_risk, agent_user
):
    _, _, run = at_risk
    campaign()
    after_scoring(run=run, now=NOW)
    to_do = list(Alert.objects.filter(planned_on__isnull=False).values_list("pk", flat=True))
    watched = Alert.objects.filter(planned_on__isnull=True, severity="high")
    assert to_do and watched.exists()  # the control arm's cases have nothing worth doing
    handled = to_do.pop()
    alert_acknowledge(alert_id=handled, actor=Actor.agent(agent_user, via="admin"), now=NOW)
    assert alerts_escalate(now=NOW + dt.timedelta(hours=23)) == []
    escalated = alerts_escalate(now=NOW + dt.timedelta(hours=25))
    assert sorted(escalated) == sorted(to_do)
    assert alerts_escalate(now=NOW + dt.timedelta(hours=26)) == []


def test_the_control_arm_receives_nothing_and_is_tracked_like_treatment(at_risk, agent_user):
    _, _, run = at_risk
    campaign()
    after_scoring(run=run, now=NOW)
    control = Intervention.objects.filter(arm="control")
    assert control.exists() and set(control.values_list("state", flat=True)) == {"held_out"}
    actor = Actor.agent(agent_user, via="admin")
    counts = interventions_approve(ids=control.values_list("pk", flat=True), actor=actor, now=NOW)
    assert counts["queued"] == 0 and counts["already_decided"] == control.count()
    interventions_approve(
        ids=Intervention.objects.filter(arm="treatment").values_list("pk", flat=True),
        actor=actor,
        now=NOW,
    )
    assert not OutboxMessage.objects.filter(intervention__arm="control").exists()
    assert not Coupon.objects.filter(intervention__arm="control").exists()
    assert OutboxMessage.objects.filter(intervention__arm="treatment").exists()
    assert AuditEntry.objects.filter(intervention__arm="control", action="held_out").count() == (
        control.count()
    )


def test_arms_are_a_stable_hash_of_campaign_and_customer(at_risk):
    _, _, run = at_risk
    first = campaign()
    after_scoring(run=run, now=NOW)
    arms = dict(Intervention.objects.values_list("customer_id", "arm"))
    assert len(arms) == 40
    AuditEntry.objects.all().delete()
    Intervention.objects.all().delete()
    interventions_propose(run=run, now=NOW)
    assert dict(Intervention.objects.filter(campaign=first).values_list("customer_id", "arm")) == (
        arms
    )


def test_budget_caps_stop_new_offers_and_keep_the_arms_comparable(at_risk):
    _, _, run = at_risk
    capped = campaign(max_offers=5)
    after_scoring(run=run, now=NOW)
    treated = Intervention.objects.filter(campaign=capped, arm="treatment")
    assert treated.count() == 5
    assert Intervention.objects.filter(campaign=capped, arm="control").count() < 40 - 5


def test_a_double_tap_approves_once_and_says_who_acted(at_risk, agent_user):
    _, _, run = at_risk
    campaign()
    after_scoring(run=run, now=NOW)
    proposed = Intervention.objects.filter(state="proposed").first()
    actor = Actor.agent(agent_user, via="bot", chat_id="42")
    approved = intervention_approve(intervention_id=proposed.pk, actor=actor, now=NOW)
    assert approved.state == "queued" and approved.decided_by == agent_user
    with pytest.raises(AlreadyDecided, match="already queued by shop-agent"):
        intervention_approve(intervention_id=proposed.pk, actor=actor, now=NOW)
    assert OutboxMessage.objects.filter(intervention=proposed).count() == 1
    trail = list(proposed.audit.order_by("id").values_list("action", "via", "chat_id"))
    assert trail == [("proposed", "task", ""), ("approved", "bot", "42"), ("queued", "bot", "42")]


def test_edits_stay_within_the_campaigns_limits(at_risk, agent_user):
    _, _, run = at_risk
    campaign(max_percent_off=15)
    after_scoring(run=run, now=NOW)
    ids = list(Intervention.objects.filter(state="proposed").values_list("pk", flat=True)[:2])
    actor = Actor.agent(agent_user, via="console")
    with pytest.raises(OfferOutOfLimits, match="at most 15"):
        intervention_edit(
            intervention_id=ids[0], actor=actor, now=NOW, offer_type="percent_off", offer_value=25
        )
    with pytest.raises(OfferOutOfLimits, match="not one of this campaign's offers"):
        intervention_edit(
            intervention_id=ids[0],
            actor=actor,
            now=NOW,
            offer_type="loyalty_points",
            offer_value=100,
        )
    edited = intervention_edit(
        intervention_id=ids[0], actor=actor, now=NOW, offer_type="percent_off", offer_value=15
    )
    assert edited.state == "queued" and edited.offer_value == 15
    assert edited.coupon.value == 15 and "15% off" in edited.messages.get().body
    dismissed = intervention_dismiss(
        intervention_id=ids[1], actor=actor, now=NOW, reason="customer called yesterday"
    )
    assert dismissed.state == "dismissed" and dismissed.dismiss_reason.startswith("customer")


def test_it_refuses_offer_values_outside_the_campaigns_range_and_names_the_range(
    at_risk, agent_user
):
    _, _, run = at_risk
    capped = campaign(max_percent_off=15, max_fixed_amount=20)
    capped.offers.add(*Offer.objects.filter(offer_type__in=["loyalty_points", "fixed_amount"]))
    after_scoring(run=run, now=NOW)
    proposed = Intervention.objects.filter(campaign=capped, state="proposed")
    first = proposed.first()
    actor = Actor.agent(agent_user, via="console")
    bad = {
        "percent_off": ["0.001", "15.005", "0", "-5", "15.01", "NaN", "sNaN", "Infinity", "1e9"],
        "fixed_amount": ["20.01", "-1", "nan", "-Infinity", "ten", ""],
        "loyalty_points": ["99999999", "1001", "12.5", "0", "1e9", "NaN"],
    }
    ranges = {
        "percent_off": PERCENT_RANGE.format(limit=15),
        "fixed_amount": AMOUNT_RANGE.format(limit=20),
        "loyalty_points": POINTS_RANGE.format(limit=1000),
    }
    for offer_type, values in bad.items():
        for value in values:
            with pytest.raises(OfferOutOfLimits, match=f"^{re.escape(ranges[offer_type])}$"):
                intervention_edit(
                    intervention_id=first.pk,
                    actor=actor,
                    now=NOW,
                    offer_type=offer_type,
                    offer_value=value,
                )
    first.refresh_from_db()
    assert first.state == "proposed" and not Coupon.objects.exists()
    assert not first.audit.filter(action="edited").exists()
    points = intervention_edit(
        intervention_id=first.pk,
        actor=actor,
        now=NOW,
        offer_type="loyalty_points",
        offer_value="1000",
    )
    assert points.offer_value == 1000 and points.coupon.value == 1000
    shipping = intervention_edit(
        intervention_id=proposed.first().pk,
        actor=actor,
        now=NOW,
        offer_type="free_shipping",
        offer_value="NaN",  # free shipping carries no value: whatever is sent is ignored
    )
    assert shipping.offer_type == "free_shipping" and shipping.offer_value == 0


def test_the_contact_policy_blocks_with_a_reason_and_defers_quiet_hours(at_risk):
    opted_out = customer("opted-out", marketing_opt_out=True)
    no_consent = customer("no-consent", email_consent=False, sms_consent=False)
    ticket = customer("ticket")
    Event.objects.create(
        customer=ticket, kind="support_ticket", occurred_at=NOW - dt.timedelta(days=2)
    )
    closed = customer("closed-ticket")
    Event.objects.create(
        customer=closed,
        kind="support_ticket",
        properties={"status": "closed"},
        occurred_at=NOW - dt.timedelta(days=2),
    )
    night_owl = customer("night-owl", time_zone="Asia/Tokyo")  # 19:00 there: fine
    sleeper = customer("sleeper", time_zone="America/Los_Angeles")  # 03:00 there
    wanted = [
        (c.pk, ["sms", "email"])
        for c in (opted_out, no_consent, ticket, closed, night_owl, sleeper, closed)
    ]
    d = contact_decisions(wanted, now=NOW)
    assert d[0].blocked == OPTED_OUT
    assert d[1].blocked == NO_CHANNEL.format(channels="sms, email")
    assert d[2].blocked.startswith("a support ticket is open")
    assert d[3].channel == "sms" and not d[3].blocked
    assert d[4].send_after is None
    assert d[5].send_after == dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)  # 08:00 in LA
    assert d[6].blocked == CAP_7.format(n=1, cap=1)  # the batch's first message counts


def test_a_blocked_intervention_records_why(at_risk, agent_user):
    _, _, run = at_risk
    campaign()
    after_scoring(run=run, now=NOW)
    proposed = Intervention.objects.filter(state="proposed").first()
    proposed.customer.marketing_opt_out = True
    proposed.customer.save()
    done = intervention_approve(
        intervention_id=proposed.pk, actor=Actor.agent(agent_user, via="admin"), now=NOW
    )
    assert done.state == "blocked" and done.block_reason == OPTED_OUT
    assert not OutboxMessage.objects.filter(intervention=done).exists()
    assert done.audit.filter(action="blocked", detail__reason=OPTED_OUT).exists()


def test_won_back_customers_close_their_alerts(at_risk):
    people, _, run = at_risk
    alerts_raise(run=run, now=NOW)
    order(people[0], "2026-07-03")
    assert alerts_resolve_won_back(now=NOW + dt.timedelta(days=5)) >= 1
    alert = Alert.objects.get(customer=people[0], rule__name="High churn risk")
    assert alert.state == "resolved" and alert.resolution == "won_back"
    assert alert.won_back_order.customer == people[0]


@pytest.mark.smoke
def test_sent_offers_convert_on_an_order_within_the_window_or_expire(at_risk, agent_user):
    _, _, run = at_risk
    campaign(window_days=30)
    after_scoring(run=run, now=NOW)
    sent = list(Intervention.objects.filter(state="proposed")[:3])
    Intervention.objects.filter(pk__in=[i.pk for i in sent]).update(state="sent", sent_at=NOW)
    buyer, late, silent = (i.customer for i in sent)
    bought = order(buyer, "2026-07-10")
    order(late, "2026-08-15")  # after the 30-day window
    assert interventions_settle(now=NOW + dt.timedelta(days=10)) == {"converted": 1, "expired": 0}
    undecided = Intervention.objects.filter(state="proposed").count()  # these expire too
    later = interventions_settle(now=NOW + dt.timedelta(days=31))
    assert later == {"converted": 0, "expired": 2 + undecided}
    states = {i.customer: i for i in Intervention.objects.filter(pk__in=[i.pk for i in sent])}
    assert states[buyer].state == "converted" and states[buyer].converted_order == bought
    assert states[late].state == "expired" and states[silent].state == "expired"
    assert states[buyer].audit.filter(action="converted", actor_kind="customer").exists()


def test_product_offers_carry_the_scoring_runs_picks_to_treated_customers_only():
    shoes = [
        Product.objects.create(sku=f"SHOE-{i}", name=f"Shoe {i}", category="shoes", price=50)
        for i in range(3)
    ]
    people = [customer(f"fan-{i}") for i in range(20)]
    picks = [shoes[2].pk, shoes[0].pk]
    run = scored_run([{"customer": c, "probability": 0.9, "picks": picks} for c in people])
    recommending = campaign()
    recommending.offers.set(Offer.objects.filter(offer_type="product_recommendation"))
    alerts_raise(run=run, now=NOW)
    interventions_propose(run=run, now=NOW)
    offers = Intervention.objects.filter(campaign=recommending)
    assert offers.count() == len(people)
    assert {o.offer_type for o in offers} == {"product_recommendation"}
    for offer in offers:
        treated = offer.arm == Intervention.Arm.TREATMENT
        assert offer.recommended_skus == (["SHOE-2", "SHOE-0"] if treated else [])


def test_recommended_skus_are_json_lists_with_the_shops_own_text_escaped():
    odd = Product.objects.create(sku='QU"OTE\\1', name="Odd", category="misc", price=5)
    plain = Product.objects.create(sku="PLAIN-1", name="Plain", category="misc", price=5)
    gone = Product.objects.create(sku="GONE", name="Gone", category="misc", price=5)
    fans = [customer(f"sku-{i}") for i in range(3)]
    run = scored_run(
        [
            {"customer": fans[0], "picks": [odd.pk, plain.pk]},
            {"customer": fans[1], "picks": [gone.pk]},
            {"customer": fans[2], "picks": []},
        ]
    )
    gone.delete()  # a product removed since the run picked it is left out
    lists = recommended_skus(run, np.array([c.pk for c in fans]))
    assert [json.loads(text) for text in lists] == [['QU"OTE\\1', "PLAIN-1"], [], []]
    assert list(lists.index) == [c.pk for c in fans]
