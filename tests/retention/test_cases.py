"""Cases: rule hits folded into one open case per customer, its priority from the best
offer proposed, each queue's and agent's day planned within its capacity, and lost
customers left to the automatic win-back."""

from __future__ import annotations

import datetime as dt

import pytest

from ml.models import Stage
from retention.models import (
    CAPACITY_TOO_LOW,
    AgentCapacity,
    Alert,
    AuditEntry,
    Campaign,
    Intervention,
    Offer,
    Queue,
    RiskRule,
    RuleCondition,
)
from retention.selectors import todays_queue
from retention.services.alerts import alert_close, alerts_raise
from retention.services.audit import Actor
from retention.services.cases import CapacityRefused, capacity_set
from retention.services.interventions import intervention_approve
from retention.services.pipeline import after_scoring
from tests.factories import AS_OF, NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db

HIGH = "High churn risk"
LOGIN = "No login for 30 days"


def rule(name: str) -> RiskRule:
    return RiskRule.objects.get(name=name)


def test_rule_hits_on_one_customer_fold_into_one_case_listing_every_rule():
    both = customer("both")
    run = scored_run([{"customer": both, "probability": 0.9, "days_since_login": 45}])
    assert alerts_raise(run=run, now=NOW)[LOGIN] == 1
    alerts_raise(run=run, now=NOW)  # the same night again adds nothing
    case = Alert.objects.get(customer=both)
    assert case.rule == rule(HIGH)  # the highest-priority rule titles it
    listed = [(r.rule.name, r.rule.description) for r in case.case_reasons.all()]
    assert listed == [
        (HIGH, rule(HIGH).description),
        (LOGIN, rule(LOGIN).description),
    ]


def test_a_new_rule_joins_the_open_case_and_raises_its_title_and_severity():
    person = customer("later")
    quiet = scored_run([{"customer": person, "probability": 0.5, "days_since_login": 45}])
    alerts_raise(run=quiet, now=NOW)
    case = Alert.objects.get(customer=person)
    assert (case.rule.name, case.severity) == (LOGIN, "medium")
    worse = scored_run([{"customer": person, "probability": 0.9, "days_since_login": 46}])
    alerts_raise(run=worse, now=NOW + dt.timedelta(days=1))
    case.refresh_from_db()
    assert Alert.objects.filter(customer=person).count() == 1
    assert (case.rule.name, case.severity) == (HIGH, "high")
    assert set(case.case_reasons.values_list("rule__name", flat=True)) == {HIGH, LOGIN}


def test_a_closed_case_keeps_each_rule_quiet_for_its_own_cooldown(agent_user):
    person = customer("cooling")
    RiskRule.objects.filter(name=LOGIN).update(cooldown_days=3)
    run = scored_run([{"customer": person, "probability": 0.9, "days_since_login": 45}])
    alerts_raise(run=run, now=NOW)
    case = Alert.objects.get(customer=person)
    actor = Actor.agent(agent_user, via="admin")
    alert_close(alert_id=case.pk, actor=actor, now=NOW, dismiss=True)
    alerts_raise(run=run, now=NOW + dt.timedelta(days=4))  # login's 3 days are over
    reopened = Alert.objects.get(customer=person, state="open")
    assert list(reopened.case_reasons.values_list("rule__name", flat=True)) == [LOGIN]
    assert reopened.rule.name == LOGIN


def test_priority_is_the_best_proposed_offers_value_and_only_valuable_cases_are_to_do():
    people = [customer(f"p{i}") for i in range(30)]
    rows = [
        {"customer": c, "probability": 0.9, "monetary_avg": 40.0 + i} for i, c in enumerate(people)
    ]
    run = scored_run(rows)
    campaign(control_share=0.3)
    after_scoring(run=run, now=NOW)
    for case in Alert.objects.all():
        offers = Intervention.objects.filter(alert=case)
        treated = offers.filter(arm="treatment", state="proposed")
        best = max((i.expected_net_value for i in treated), default=0.0)
        assert case.priority == pytest.approx(best)
        assert case.is_to_do == (best > 0)  # capacity 100 holds them all
    assert (
        Alert.objects.filter(priority=0).count()
        == Intervention.objects.filter(arm="control").count()
    )


def test_only_the_top_cases_within_a_queues_capacity_are_to_do_and_what_is_done_counts(
    agent_user,
):
    people = [customer(f"q{i}") for i in range(12)]
    run = scored_run(
        [
            {"customer": c, "probability": 0.9, "expected_spend": 100.0 + 25 * i}
            for i, c in enumerate(people)
        ]
    )
    Queue.objects.filter(name="shared").update(daily_capacity=4)
    campaign(control_share=0.01)
    summary = after_scoring(run=run, now=NOW)
    worth = Alert.objects.filter(priority__gt=0).order_by("-priority")
    assert summary["plan"]["to_do"] == 4
    today = todays_queue(day=AS_OF, queue="shared")
    assert [c.pk for c in today.to_do] == [c.pk for c in worth[:4]]
    assert (today.to_do_count, today.watching_count, today.done_today) == (4, 8, 0)
    assert list(today.watching) == sorted(today.watching, key=lambda c: -c.priority)

    top = today.to_do.first()
    offer = Intervention.objects.get(alert=top, arm="treatment")
    during_the_day = dt.datetime.combine(AS_OF, dt.time(15), tzinfo=dt.UTC)
    intervention_approve(
        intervention_id=offer.pk, actor=Actor.agent(agent_user, via="bot"), now=during_the_day
    )
    # Planning the same day again: what was done counts against the capacity.
    after_scoring(run=run, now=NOW)
    today = todays_queue(day=AS_OF, queue="shared")
    assert (today.to_do_count, today.done_today) == (3, 1)


def test_an_agents_cases_are_planned_within_the_agents_own_capacity(agent_user):
    RiskRule.objects.filter(name=HIGH).update(assignee=agent_user)
    people = [customer(f"a{i}") for i in range(8)]
    run = scored_run([{"customer": c, "probability": 0.9} for c in people])
    AgentCapacity.objects.create(user=agent_user, daily_capacity=2)
    campaign(control_share=0.01)
    after_scoring(run=run, now=NOW)
    mine = todays_queue(day=AS_OF, agent=agent_user)
    assert mine.capacity == 2 and mine.to_do_count == 2
    assert mine.watching_count == Alert.objects.filter(assigned_to=agent_user).count() - 2
    assert todays_queue(day=AS_OF, queue="shared").to_do_count == 0


def test_a_capacity_below_one_is_refused_naming_the_field_and_a_change_replans(admin_user):
    people = [customer(f"c{i}") for i in range(6)]
    campaign(control_share=0.01)
    after_scoring(run=scored_run([{"customer": c, "probability": 0.9} for c in people]), now=NOW)
    actor = Actor.agent(admin_user, via="api")
    for bad in (0, -3, "many", 2.5, True):
        with pytest.raises(CapacityRefused) as refused:
            capacity_set(daily_capacity=bad, actor=actor, now=NOW, queue="shared")
        assert refused.value.field == "daily_capacity"
    assert Queue.objects.get(name="shared").daily_capacity == 100
    capacity_set(daily_capacity=2, actor=actor, now=NOW, queue="shared")
    assert Alert.objects.filter(planned_on__isnull=False).count() == 2
    entry = AuditEntry.objects.get(action="capacity_changed")
    assert entry.detail == {"queue": "shared", "from": 100, "to": 2}


def test_the_admin_and_the_api_refuse_a_capacity_below_one_with_the_field_named(
    client, admin_user, admin_api, agent_user
):
    client.force_login(admin_user)
    page = client.post("/admin/retention/queue/add/", {"name": "vip", "daily_capacity": "0"})
    assert page.status_code == 200 and CAPACITY_TOO_LOW in page.content.decode()
    assert not Queue.objects.filter(name="vip").exists()
    assert (
        client.post(
            "/admin/retention/queue/add/", {"name": "vip", "daily_capacity": "30"}
        ).status_code
        == 302
    )
    assert Queue.objects.get(name="vip").daily_capacity == 30
    assert AuditEntry.objects.filter(action="capacity_changed", detail__queue="vip").exists()

    refused = admin_api.put("/api/v1/queues/vip/capacity", {"daily_capacity": 0}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"daily_capacity": [CAPACITY_TOO_LOW]}
    done = admin_api.put("/api/v1/queues/vip/capacity", {"daily_capacity": 12}, format="json")
    assert done.status_code == 200
    assert done.json() == {
        "name": "vip",
        "daily_capacity": 12,
        "to_do": 0,
        "watching": 0,
        "done_today": 0,
    }
    url = f"/api/v1/agents/{agent_user.username}/capacity"
    assert admin_api.put(url, {"daily_capacity": -1}, format="json").json() == {
        "daily_capacity": [CAPACITY_TOO_LOW]
    }
    assert admin_api.put(url, {"daily_capacity": 7}, format="json").status_code == 200
    assert AgentCapacity.objects.get(user=agent_user).daily_capacity == 7
    unknown = admin_api.put("/api/v1/queues/nope/capacity", {"daily_capacity": 7}, format="json")
    assert unknown.status_code == 404


def test_lost_customers_get_no_case_unless_a_rule_includes_them():
    lost = customer("lost")
    active = customer("active")
    rows = [
        {"customer": lost, "probability": 0.95, "recency_days": 500},
        {"customer": active, "probability": 0.95, "recency_days": 20},
    ]
    run = scored_run(rows)
    alerts_raise(run=run, now=NOW)
    assert list(Alert.objects.values_list("customer", flat=True)) == [active.pk]
    RiskRule.objects.filter(name=HIGH).update(include_lost=True)
    alerts_raise(run=run, now=NOW)
    case = Alert.objects.get(customer=lost)
    assert case.stage == Stage.LOST


def test_an_open_case_whose_customer_is_now_lost_leaves_the_agents_queue():
    person = customer("fading")
    alerts_raise(run=scored_run([{"customer": person, "probability": 0.9}]), now=NOW)
    later = scored_run([{"customer": person, "probability": 0.95, "recency_days": 400}])
    alerts_raise(run=later, now=NOW + dt.timedelta(days=1))
    case = Alert.objects.get(customer=person)
    assert (case.state, case.resolution, case.stage) == ("resolved", "lost", "lost")
    assert case.audit.filter(action="left_to_win_back").exists()


def test_lost_customers_go_to_the_automatic_win_back_not_to_agent_campaigns():
    lost = [customer(f"lost{i}", email_consent=True) for i in range(6)]
    fading = [customer(f"at-risk{i}") for i in range(6)]
    run = scored_run(
        [{"customer": c, "probability": 0.95, "bgnbd_p_alive": 0.01} for c in lost]
        + [{"customer": c, "probability": 0.95} for c in fading]
    )
    agents = campaign(target_rule=None, target_tier="high", control_share=0.2)
    win_back = Campaign.objects.get(target_stage=Stage.LOST)
    assert win_back.approval_mode == Campaign.Approval.AUTOMATIC
    assert set(win_back.offers.values_list("offer_type", flat=True)) <= {
        "product_recommendation",
        "free_shipping",
    }
    win_back.starts_on = AS_OF
    win_back.save()
    after_scoring(run=run, now=NOW)
    assert set(Intervention.objects.filter(campaign=agents).values_list("customer", flat=True)) == {
        c.pk for c in fading
    }
    sent = Intervention.objects.filter(campaign=win_back)
    assert set(sent.values_list("customer", flat=True)) == {c.pk for c in lost}
    assert not sent.filter(state="proposed").exists()  # nobody has to approve them
    assert not Alert.objects.filter(customer__in=lost).exists()
    agents.include_lost = True
    agents.save()
    Intervention.objects.filter(campaign=agents).delete()
    after_scoring(run=run, now=NOW)
    assert Intervention.objects.filter(campaign=agents).count() == 12


def test_rules_and_campaigns_can_target_stages():
    lapsing = customer("lapsing")
    recent = customer("recent")
    run = scored_run(
        [
            {"customer": lapsing, "probability": 0.8, "recency_days": 200},
            {"customer": recent, "probability": 0.8, "recency_days": 10},
        ]
    )
    stage_rule = RiskRule.objects.create(name="Lapsing", priority=50)
    RuleCondition.objects.create(rule=stage_rule, field="stage", operator="=", value="lapsing")
    at_risk = campaign(
        name="At risk", target_rule=None, target_stage=Stage.AT_RISK, control_share=0.01
    )
    at_risk.offers.set(Offer.objects.filter(offer_type="percent_off"))
    after_scoring(run=run, now=NOW)
    assert set(
        Alert.objects.filter(case_reasons__rule=stage_rule).values_list("customer", flat=True)
    ) == {lapsing.pk}
    assert list(
        Intervention.objects.filter(campaign=at_risk).values_list("customer", flat=True)
    ) == [recent.pk]


def test_an_actioned_case_closes_once_its_offers_ended_without_an_order(agent_user):
    people = [customer(f"e{i}") for i in range(6)]
    run = scored_run([{"customer": c, "probability": 0.9} for c in people])
    campaign(control_share=0.01)
    after_scoring(run=run, now=NOW)
    offer = Intervention.objects.filter(arm="treatment").first()
    intervention_approve(
        intervention_id=offer.pk, actor=Actor.agent(agent_user, via="bot"), now=NOW
    )
    case = Alert.objects.get(pk=offer.alert_id)
    alerts_raise(run=run, now=NOW)
    case.refresh_from_db()
    assert case.state == "actioned"  # its offer is on its way
    Intervention.objects.filter(pk=offer.pk).update(state="expired")
    alerts_raise(run=run, now=NOW + dt.timedelta(days=1))
    case.refresh_from_db()
    assert (case.state, case.resolution) == ("resolved", "offer_ended")
    assert case.audit.filter(action="offer_ended", from_state="actioned").exists()
    # The rules' cooldowns keep the customer quiet for a while, then a new case may open.
    assert not Alert.objects.filter(customer=case.customer, state="open").exists()
    alerts_raise(run=run, now=NOW + dt.timedelta(days=16))
    assert Alert.objects.filter(customer=case.customer, state="open").exists()
