"""The nightly pipeline on a real worker, and the closed loop on a small synthetic shop."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db.models import Count

from customers.synthetic.services import generate_shop
from ml.models import CustomerScore
from ml.services import train_models
from retention.models import Alert, AuditEntry, Campaign, CampaignOutcome, Intervention, Offer
from retention.selectors import true_average_effect
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
    high = CustomerScore.objects.filter(run_id=first["run"], tier="high")
    alerts = Alert.objects.filter(rule__name="High churn risk")
    assert alerts.count() == high.count() > 0
    assert not alerts.values("customer").annotate(n=Count("id")).filter(n__gt=1).exists()
    offers = Intervention.objects.filter(campaign=campaign)
    assert offers.count() == high.count()
    assert again["interventions"][campaign.name]["treatment"] == 0


def test_the_loop_closes_on_a_synthetic_shop():
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
