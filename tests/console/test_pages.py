"""The console's pages and buttons through the Django test client: what each role sees,
that every button calls the workflow's services (same limits, same audit), and that
charts are drawn where the data exists."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from ml.models import ModelVersion
from ml.services import promote
from retention.models import Alert, AuditEntry, CampaignOutcome, Intervention, OutboxMessage
from retention.services.pipeline import after_scoring
from tests.retention.factories import NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def shop(settings):
    """Six high-risk customers with open alerts, and proposals of a campaign (half are
    held out as its control arm); one safe customer without alerts."""
    settings.OUTBOX_RETRY_SECONDS = 0
    people = [customer(f"c{i}", name=f"Person {i}") for i in range(6)]
    customer("safe")
    rows = [
        {"customer": c, "probability": 0.8 + i / 100, "expected_spend": 100.0 + 50 * i}
        for i, c in enumerate(people)
    ]
    win_back = campaign(control_share=0.3)
    after_scoring(run=scored_run(rows), now=NOW)
    return people, win_back


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _proposed() -> list[Intervention]:
    return list(Intervention.objects.filter(state="proposed").order_by("-expected_net_value", "pk"))


@pytest.mark.smoke
def test_today_puts_the_most_valuable_offer_first_and_one_card_per_customer(shop, agent_user):
    page = _client(agent_user).get(reverse("console:today"))
    assert page.status_code == 200
    html = page.content.decode()
    best = _proposed()[0]
    cards = re.findall(r'id="card-(\d+)"', html)
    assert cards[0] == str(best.customer_id)
    assert len(cards) == len(set(cards)) == 6  # every alerted customer once, offer or not
    assert "safe" not in html


def test_today_filters_by_campaign_show_only_its_offers(shop, agent_user):
    _, win_back = shop
    page = _client(agent_user).get(reverse("console:today"), {"campaign": win_back.pk})
    cards = re.findall(r'id="card-(\d+)"', page.content.decode())
    assert sorted(cards) == sorted(str(o.customer_id) for o in _proposed())


@pytest.mark.smoke
def test_approving_a_card_queues_its_message_and_redraws_the_card(shop, agent_user):
    offer = _proposed()[0]
    response = _client(agent_user).post(
        reverse("console:offer-approve", args=[offer.pk]), {}, **HTMX
    )
    assert response.status_code == 200
    offer.refresh_from_db()
    assert offer.state == "queued" and offer.decided_by == agent_user
    message = OutboxMessage.objects.get(intervention=offer)
    html = response.content.decode()
    assert f'id="card-{offer.customer_id}"' in html
    assert 'data-state="queued"' in html and f"message #{message.pk}" in html
    assert "data-approve" not in html
    assert AuditEntry.objects.filter(intervention=offer, action="approved", via="console").exists()


def test_an_edit_outside_the_campaign_limits_is_refused_and_changes_nothing(shop, agent_user):
    offer = _proposed()[0]
    response = _client(agent_user).post(
        reverse("console:offer-edit", args=[offer.pk]),
        {"offer_type": "percent_off", "offer_value": "90", "view": "customer"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "Not allowed:" in response.content.decode()
    offer.refresh_from_db()
    assert offer.state == "proposed" and offer.offer_value < 90
    assert not OutboxMessage.objects.filter(intervention=offer).exists()


def test_an_edit_within_the_limits_is_sent_and_audited(shop, agent_user):
    offer = _proposed()[0]
    _client(agent_user).post(
        reverse("console:offer-edit", args=[offer.pk]),
        {"offer_type": "percent_off", "offer_value": "15"},
    )
    offer.refresh_from_db()
    assert offer.offer_value == 15 and offer.state == "queued"
    assert AuditEntry.objects.filter(intervention=offer, action="edited").exists()


def test_dismissing_a_case_closes_its_offer_and_alerts_with_the_reason(shop, agent_user):
    offer = _proposed()[0]
    response = _client(agent_user).post(
        reverse("console:case-dismiss", args=[offer.customer_id]),
        {"reason": "", "note": "spoke on the phone"},
    )
    assert response.status_code == 302
    offer.refresh_from_db()
    assert offer.state == "dismissed" and offer.dismiss_reason == "spoke on the phone"
    assert not Alert.objects.filter(
        customer_id=offer.customer_id, state__in=["open", "acknowledged"]
    ).exists()


def test_dismissing_without_a_reason_is_refused(shop, agent_user):
    offer = _proposed()[0]
    response = _client(agent_user).post(
        reverse("console:case-dismiss", args=[offer.customer_id]), {"reason": ""}, **HTMX
    )
    assert "Say why" in response.content.decode()
    offer.refresh_from_db()
    assert offer.state == "proposed"


def test_assign_to_me_moves_the_case_to_my_queue(shop, agent_user):
    person = shop[0][0]
    client = _client(agent_user)
    client.post(reverse("console:case-assign-me", args=[person.pk]), {})
    assert set(Alert.objects.filter(customer=person).values_list("assigned_to", flat=True)) == {
        agent_user.pk
    }
    html = client.get(reverse("console:today")).content.decode()
    mine = html.split('id="team-title"')[0]
    assert f'id="card-{person.pk}"' in mine


def test_the_customer_page_masks_contacts_for_agents_only(shop, agent_user, admin_user):
    person = shop[0][0]
    url = reverse("console:customer", args=[person.external_id])
    agent_page = _client(agent_user).get(url).content.decode()
    admin_page = _client(admin_user).get(url).content.decode()
    assert person.email not in agent_page and "c***@example.com" in agent_page
    assert person.email in admin_page
    assert "no order for 74 days" in agent_page  # the reasons, in words
    assert "<svg" in agent_page  # the score history


def test_a_campaign_page_draws_retention_and_uplift_with_its_interval(shop, agent_user):
    _, win_back = shop
    for day, (t, c) in enumerate([(0.30, 0.20), (0.35, 0.22)]):
        CampaignOutcome.objects.create(
            campaign=win_back,
            as_of=dt.date(2026, 7, 10 + day),
            arms={
                "treatment": {
                    "customers": 100,
                    "retained": int(t * 100),
                    "retention": t,
                    "revenue": 1000.0,
                    "discount_cost": 50.0,
                },
                "control": {
                    "customers": 100,
                    "retained": int(c * 100),
                    "retention": c,
                    "revenue": 800.0,
                },
            },
            uplift=t - c,
            ci_low=t - c - 0.05,
            ci_high=t - c + 0.05,
            net_incremental_revenue=150.0,
            verdict="treatment retains more",
            computed_at=NOW,
        )
    html = _client(agent_user).get(reverse("console:campaign", args=[win_back.pk])).content
    html = html.decode()
    assert html.count("<svg") >= 3
    assert "+13.0 pp" in html and "€150.00" in html
    assert "<polygon" in html  # the interval band


def test_the_models_page_draws_roc_and_calibration_and_promotion_is_audited(shop, admin_user):
    version = ModelVersion.objects.get()
    version.metrics = {
        "auc": 0.8,
        "brier": 0.15,
        "roc": [[0, 0], [0.2, 0.6], [1, 1]],
        "calibration": [{"n": 10, "predicted": 0.2, "observed": 0.25}],
    }
    version.save()
    client = _client(admin_user)
    html = client.get(reverse("console:models"), {"version": version.pk}).content.decode()
    assert html.count('<path class="series"') >= 2
    client.post(reverse("console:model-promote", args=[version.pk]))
    version.refresh_from_db()
    assert version.status == "champion"
    entry = AuditEntry.objects.get(action="model_promoted")
    assert entry.actor == admin_user and entry.via == "console"
    assert entry.detail["version"] == version.pk


def test_rollback_from_the_console_restores_the_previous_champion(shop, admin_user):
    first = ModelVersion.objects.get()
    promote(version=first)
    second = ModelVersion.objects.create(
        **{
            f.name: getattr(first, f.name)
            for f in ModelVersion._meta.fields
            if f.name not in {"id", "status", "promoted_at", "created_at"}
        }
    )
    promote(version=second)
    _client(admin_user).post(reverse("console:model-rollback"))
    first.refresh_from_db()
    assert first.status == "champion"
    kinds = list(AuditEntry.objects.order_by("at", "pk").values_list("action", "actor"))
    assert kinds[-1] == ("model_rolled_back", admin_user.pk)
    assert ("model_promoted", None) in kinds  # training and commands are audited too


def test_overview_counts_alerts_and_draws_its_charts(shop, admin_user):
    html = _client(admin_user).get(reverse("console:overview")).content.decode()
    assert html.count("<svg") >= 4
    assert "open alerts" in html


def test_anonymous_visitors_are_sent_to_log_in_and_land_on_today(shop, agent_user):
    response = Client().get(reverse("console:today"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))
