"""The admin that stays shows numbers as people read them (issue 18, item 6) and the
model's pictures (issue 16, item 4)."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from ml.metrics import evaluate
from ml.models import ModelVersion
from retention.models import Alert, Campaign, Offer, RiskRule
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_model_version_shows_its_roc_curve_and_calibration_by_decile(admin_user):
    person = customer("m1")
    scored_run([{"customer": person}])
    version = ModelVersion.objects.get()
    rng = np.random.default_rng(1)
    p = rng.uniform(size=500)
    version.metrics = evaluate((rng.uniform(size=500) < p).astype(int), p)
    version.save()
    html = (
        _admin(admin_user)
        .get(reverse("admin:ml_modelversion_change", args=[version.pk]))
        .content.decode()
    )
    assert html.count('class="chart"') == 2  # ROC and reliability diagram
    assert "predicted 5% - observed" in html  # the deciles, no longer "-"
    assert "lift in the riskiest 10%" in html and '"calibration"' not in html


def test_alerts_show_risk_as_a_percentage_reasons_as_a_list_and_link_the_console(admin_user):
    person = customer("a1")
    campaign()
    after_scoring(
        run=scored_run([{"customer": person, "probability": 0.9417683208748382}]), now=NOW
    )
    alert = Alert.objects.get()
    client = _admin(admin_user)
    listing = client.get(reverse("admin:retention_alert_changelist")).content.decode()
    assert "94%" in listing and "0.9417683208748382" not in listing
    assert reverse("console:customer", args=["a1"]) in listing
    page = client.get(reverse("admin:retention_alert_change", args=[alert.pk])).content.decode()
    assert "<li>no order for 74 days</li>" in page


def test_a_campaign_takes_channels_as_choices_and_the_control_group_in_percent(admin_user):
    client = _admin(admin_user)
    form = client.get(reverse("admin:retention_campaign_add")).content.decode()
    assert 'type="checkbox" name="channels" value="sms"' in form
    data = {
        "name": "Loyal gone quiet",
        "status": "draft",
        "approval_mode": "agent",
        "target_rule": RiskRule.objects.get(name="High churn risk").pk,
        "offers": [Offer.objects.get(offer_type="percent_off").pk],
        "channels": ["sms", "email"],
        "control_percent": "20",
        "exploration_share": "0.1",
        "max_percent_off": "20",
        "max_fixed_amount": "20",
        "max_loyalty_points": "1000",
        "starts_on": "2026-07-01",
        "window_days": "30",
        "outcomes-TOTAL_FORMS": "0",
        "outcomes-INITIAL_FORMS": "0",
    }
    refused = client.post(
        reverse("admin:retention_campaign_add"), {**data, "control_percent": "100"}
    )
    assert "The treatment group needs at least 0.1%" in refused.content.decode()
    assert "campaign_has_both_arms" not in refused.content.decode()
    client.post(reverse("admin:retention_campaign_add"), data)
    saved = Campaign.objects.get(name="Loyal gone quiet")
    assert saved.control_share == pytest.approx(0.2)
    assert saved.channels == ["email", "sms"]  # in the channels' order of preference


def test_a_scoring_run_shows_drift_as_a_warning_and_a_chart_not_a_tick(admin_user):
    run = scored_run([{"customer": customer("s1")}])
    run.drift, run.drift_flagged, run.max_psi = {"tenure_days": 0.4, "frequency": 0.02}, True, 0.4
    run.tier_counts = {"high": 2930, "low": 1124, "medium": 946}
    run.save()
    html = (
        _admin(admin_user)
        .get(reverse("admin:ml_scoringrun_change", args=[run.pk]))
        .content.decode()
    )
    assert "⚠ drift: tenure_days 0.40" in html
    assert 'class="chart"' in html and "high 2,930 · medium 946 · low 1,124" in html
    assert "icon-yes.svg" not in html and '{"high"' not in html
