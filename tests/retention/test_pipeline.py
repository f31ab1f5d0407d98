"""The nightly pipeline on a real worker, and the closed loop on a small synthetic shop."""

import datetime as dt

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from bots.models import AlertCard, ChatLink, QueueChat
from bots.services import cards_queue
from customers.synthetic.services import generate_shop
from ml.models import CustomerScore, Stage
from ml.selectors import latest_run
from ml.services import train_models
from retention.models import (
    AgentCapacity,
    Alert,
    AuditEntry,
    Campaign,
    CampaignOutcome,
    Intervention,
    Offer,
    Queue,
    RiskRule,
)
from retention.selectors import todays_queue, true_average_effect
from retention.tasks import nightly_pipeline_task
from tests.ml.history import simulated_shop

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def win_back(**fields) -> Campaign:
    campaign = Campaign.objects.create(
        name="Win back high risk",
        target_tier="high",
        channels=["email", "sms"],
        control_share=0.5,
        starts_on=dt.date(2024, 1, 1),
        status=Campaign.Status.ACTIVE,
        **fields,
    )
    campaign.offers.set(Offer.objects.all())
    return campaign


def test_the_nightly_task_raises_each_alert_and_offer_once_across_runs(live_worker):
    simulated_shop(customers=800, start="2024-07-01", end="2026-06-30", seed=5)
    train_models(as_of=dt.date(2026, 6, 30), algorithms=["recency_baseline"])
    campaign = win_back()
    first = nightly_pipeline_task.delay("2026-06-30").get(timeout=180)
    again = nightly_pipeline_task.delay("2026-06-30").get(timeout=180)
    assert sum(first["alerts"].values()) > 0 and sum(again["alerts"].values()) == 0
    # Lost customers are left to the automatic win-back, and every rule a customer meets
    # is a reason on their one case.
    high = CustomerScore.objects.filter(run_id=first["run"], tier="high").exclude(stage=Stage.LOST)
    alerts = Alert.objects.filter(case_reasons__rule__name="High churn risk")
    assert alerts.count() == high.count() > 0
    assert not Alert.objects.values("customer").annotate(n=Count("id")).filter(n__gt=1).exists()
    offers = Intervention.objects.filter(campaign=campaign)
    assert offers.count() == high.count()
    assert again["interventions"][campaign.name]["treatment"] == 0


def _ids_as_in_a_fresh_database() -> None:
    """Restart every id sequence after the rows already stored. The control arm is a hash
    of (campaign id, customer id), so without this the arms, and whether one draw's 95%
    interval covers the truth, would depend on which tests ran before."""
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), apps.get_models()):
            cursor.execute(statement)


def test_the_loop_closes_on_a_synthetic_shop():
    _ids_as_in_a_fresh_database()
    generate_shop(customers=3000, days=730, seed=11, end=dt.date(2026, 6, 30))
    as_of = dt.date(2026, 4, 30)
    train_models(as_of=as_of, algorithms=["logistic_regression"])
    campaign = win_back(approval_mode=Campaign.Approval.AUTOMATIC, window_days=30)
    call_command("run_pipeline", "--as-of", "2026-04-30")
    call_command("send_outbox", "--as-of", "2026-05-01")
    treated = Intervention.objects.filter(campaign=campaign, arm="treatment")
    assert treated.filter(state="sent").exists()
    call_command("simulate_responses", "--as-of", "2026-06-30")
    simulated = AuditEntry.objects.filter(action=AuditEntry.Action.SIMULATED_RESPONSE)
    orders_after_first = simulated.count()
    call_command("simulate_responses", "--as-of", "2026-06-30")
    assert simulated.count() == orders_after_first > 0
    call_command("evaluate_campaigns", "--as-of", "2026-06-30")
    outcome = CampaignOutcome.objects.get(campaign=campaign)
    arms = outcome.arms
    assert arms["treatment"]["customers"] + arms["control"]["customers"] == (
        Intervention.objects.filter(campaign=campaign).count()
    )
    assert outcome.ci_low < outcome.uplift < outcome.ci_high
    truth = true_average_effect(campaign, as_of=as_of)
    assert outcome.ci_low <= truth <= outcome.ci_high and outcome.verdict
    assert treated.filter(state__in=["converted", "expired"]).exists()


def test_after_a_demo_night_cases_are_one_per_customer_within_capacity_and_worth_acting_on(
    agent_user,
):
    """The demo's path on a small shop (a replayed campaign, then tonight's run) with
    capacities that bind: the shared queue's, and an agent's whose rule assigns them the
    high-risk cases; a second campaign gives the shared queue's cases offers, and the
    automatic win-back runs."""
    end = dt.date(2026, 6, 30)
    generate_shop(customers=1200, days=730, seed=42, end=end)
    train_models(as_of=end, algorithms=["logistic_regression"])
    Campaign.objects.filter(target_stage=Stage.LOST).update(starts_on=end)
    RiskRule.objects.filter(name="High churn risk").update(assignee=agent_user)
    logins = Campaign.objects.create(
        name="Log in again",
        target_rule=RiskRule.objects.get(name="No login for 30 days"),
        channels=["email"],
        starts_on=end,
        status=Campaign.Status.ACTIVE,
    )
    logins.offers.set(Offer.objects.all())
    Queue.objects.filter(name="shared").update(daily_capacity=25)
    AgentCapacity.objects.create(user=agent_user, daily_capacity=5)
    call_command("create_demo_campaigns", "--as-of", end.isoformat())
    call_command("run_pipeline", "--as-of", end.isoformat())

    open_cases = Alert.objects.filter(state__in=Alert.OPEN_STATES)
    per_customer = open_cases.values("customer").annotate(n=Count("id"))
    assert per_customer.exists() and not per_customer.filter(n__gt=1).exists()

    lists = [todays_queue(day=end, queue="shared"), todays_queue(day=end, agent=agent_user)]
    for today in lists:
        assert 0 < today.to_do_count <= today.capacity
        worth = [case.priority for case in today.to_do]
        assert min(worth) > 0 and min(worth) >= today.watching.first().priority
    valuable_but_watched = open_cases.filter(planned_on__isnull=True, priority__gt=0)
    assert valuable_but_watched.filter(state__in=Alert.WAITING_STATES).exists()

    QueueChat.objects.create(queue="shared", chat_id=1)
    ChatLink.objects.create(user=agent_user, chat_id=2, linked_at=timezone.now())
    cards_queue(now=timezone.now())
    pushed = AlertCard.objects.select_related("alert")
    assert pushed.count() == sum(today.to_do_count for today in lists)
    assert all(card.alert.priority > 0 and card.alert.is_to_do for card in pushed)

    lost = CustomerScore.objects.filter(run=latest_run(), stage=Stage.LOST)
    lost_ids = set(lost.values_list("customer_id", flat=True))
    assert lost_ids
    assert not open_cases.filter(customer__in=lost_ids).exists()
    for_agents = Intervention.objects.filter(customer__in=lost_ids, state="proposed")
    assert not for_agents.exists()
    won_back = Intervention.objects.filter(campaign__target_stage=Stage.LOST)
    assert won_back.exists() and set(won_back.values_list("customer", flat=True)) <= lost_ids
