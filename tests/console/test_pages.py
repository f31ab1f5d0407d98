"""The console's pages and buttons through the Django test client: what each role sees,
that every button calls the workflow's services (same limits, same audit), and that
charts are drawn where the data exists."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console import urls as console_urls
from core.roles import ADMIN
from ml.models import ModelVersion
from ml.services import promote
from retention.models import (
    Alert,
    AuditEntry,
    CampaignOutcome,
    Intervention,
    OutboxMessage,
    Queue,
    RiskRule,
)
from retention.services.cases import cases_plan
from retention.services.pipeline import after_scoring
from tests.factories import AS_OF, NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def shop(settings):
    """Six high-risk customers, each with an open case, and proposals of a campaign (about a
    third held out as its control arm, whose cases are worth nothing and so watched);
    one safe customer without a case."""
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


def _cards(html: str, name: str) -> list[int]:
    """Case ids of the cards in one of the page's lists (``data-list``), in order."""
    part = html.split(f'data-list="{name}"')[1].split("data-list=")[0]
    return [int(pk) for pk in re.findall(r'<article [^>]*data-card [^>]*id="card-(\d+)"', part)]


def _count(html: str, name: str) -> str:
    return re.search(rf'data-count="{name}">([^<]*)<', html).group(1)


def _by_priority(cases) -> list[int]:
    return list(cases.order_by("-priority", "pk").values_list("pk", flat=True))


@pytest.mark.smoke
def test_today_lists_the_queues_top_cases_within_capacity_and_watches_the_rest(shop, agent_user):
    Queue.objects.filter(name="shared").update(daily_capacity=2)
    cases_plan(day=AS_OF, now=NOW)
    page = _client(agent_user).get(reverse("console:today"))
    assert page.status_code == 200
    html = page.content.decode()
    # The control arm (drawn by a hash of the ids) is worth nothing: never to do.
    valuable = _by_priority(Alert.objects.filter(priority__gt=0))
    to_do = valuable[:2]
    assert _cards(html, "team-to-do") == to_do
    watched = _by_priority(Alert.objects.exclude(pk__in=to_do))
    assert _cards(html, "team-watching") == watched and len(to_do + watched) == 6
    assert (_count(html, "team-to-do"), _count(html, "team-watching")) == (
        str(len(to_do)),
        str(len(watched)),
    )
    assert _cards(html, "mine-to-do") == _cards(html, "mine-watching") == []
    assert re.search(r'id="card-(\d+)"', html).group(1) == str(to_do[0])  # the top case first
    assert Alert.objects.get(pk=to_do[0]).priority == _proposed()[0].expected_net_value
    assert "safe" not in html


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
    assert f'id="card-{offer.alert_id}"' in html
    assert 'data-state="queued"' in html and f"message #{message.pk}" in html
    assert "data-approve" not in html
    assert AuditEntry.objects.filter(intervention=offer, action="approved", via="console").exists()


def test_a_case_assigned_to_me_moves_to_my_list_and_what_i_approve_counts_as_done_today(
    shop, agent_user
):
    offer = _proposed()[0]
    client = _client(agent_user)
    client.post(reverse("console:case-assign-me", args=[offer.alert_id]), {})
    case = Alert.objects.get(pk=offer.alert_id)
    assert case.assigned_to == agent_user
    assert AuditEntry.objects.filter(alert=case, action="assigned", via="console").exists()
    html = client.get(reverse("console:today")).content.decode()
    assert _cards(html, "mine-to-do") == [case.pk]
    assert case.pk not in _cards(html, "team-to-do")
    assert (_count(html, "mine-to-do"), _count(html, "mine-done")) == ("1", "0")
    client.post(reverse("console:offer-approve", args=[offer.pk]), {})
    html = client.get(reverse("console:today")).content.decode()
    assert (_count(html, "mine-to-do"), _count(html, "mine-done")) == ("0", "1")
    assert _count(html, "team-done") == "0"


def test_filters_narrow_both_lists_by_queue_tier_stage_rule_and_campaign(shop, agent_user):
    _, win_back = shop
    both = customer("both")  # high risk and no login: a case titled by the first rule
    quiet = customer("quiet")  # only no login: a medium-risk case no campaign targets
    after_scoring(
        run=scored_run(
            [
                {"customer": both, "probability": 0.95, "days_since_login": 45},
                {"customer": quiet, "probability": 0.5, "days_since_login": 45, "stage": "lapsing"},
            ],
            as_of=AS_OF + dt.timedelta(days=1),
        ),
        now=NOW + dt.timedelta(days=1),
    )
    moved = Alert.objects.get(customer=shop[0][1])
    Queue.objects.create(name="vip")
    Alert.objects.filter(pk=moved.pk).update(queue="vip")
    client = _client(agent_user)

    def shown(**filters) -> set[int]:
        html = client.get(reverse("console:today"), filters).content.decode()
        return {pk for name in ("team-to-do", "team-watching") for pk in _cards(html, name)}

    cases = {c.customer.external_id: c.pk for c in Alert.objects.select_related("customer")}
    everyone = set(cases.values())
    assert shown() == everyone - {moved.pk}
    assert shown(queue="vip") == {moved.pk}
    assert shown(tier="medium") == {cases["quiet"]}
    assert shown(stage="lapsing") == {cases["quiet"]}
    login = RiskRule.objects.get(name="No login for 30 days")
    assert Alert.objects.get(pk=cases["both"]).rule != login  # listed, not titling
    assert shown(rule=login.pk) == {cases["both"], cases["quiet"]}
    assert shown(campaign=win_back.pk) == everyone - {moved.pk, cases["quiet"]}
    assert shown(rule=login.pk, tier="high") == {cases["both"]}


def test_a_rules_admin_page_links_to_its_cases_in_the_console(shop, admin_user):
    rule = RiskRule.objects.get(name="High churn risk")
    page = _client(admin_user).get(reverse("admin:retention_riskrule_change", args=[rule.pk]))
    link = re.search(r'<a href="([^"]+)">its open cases in the console</a>', page.content.decode())
    url = link.group(1).replace("&amp;", "&")
    html = _client(admin_user).get(url).content.decode()
    listed = set(_cards(html, "team-to-do") + _cards(html, "team-watching"))
    assert listed == set(Alert.objects.filter(case_reasons__rule=rule).values_list("pk", flat=True))
    assert len(listed) == 6


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


def test_dismissing_an_offer_closes_its_case_with_the_reason(shop, agent_user):
    offer = _proposed()[0]
    response = _client(agent_user).post(
        reverse("console:offer-dismiss", args=[offer.pk]),
        {"reason": "", "note": "spoke on the phone"},
    )
    assert response.status_code == 302
    offer.refresh_from_db()
    assert offer.state == "dismissed" and offer.dismiss_reason == "spoke on the phone"
    case = Alert.objects.get(pk=offer.alert_id)
    assert (case.state, case.note) == ("dismissed", "spoke on the phone")


def _case_without_offer() -> Alert:
    """A medium-risk customer who logs in no more: a case no campaign targets."""
    quiet = customer("quiet")
    run = scored_run([{"customer": quiet, "probability": 0.5, "days_since_login": 45}])
    after_scoring(run=run, now=NOW)
    return Alert.objects.get(customer=quiet)


def test_a_case_without_an_offer_to_decide_is_dismissed_as_a_case(shop, agent_user):
    case = _case_without_offer()
    response = _client(agent_user).post(
        reverse("console:case-dismiss", args=[case.pk]),
        {"reason": "", "note": "already called"},
        **HTMX,
    )
    html = response.content.decode()
    assert f'id="card-{case.pk}"' in html and "Dismissed: already called" in html
    assert "data-dismiss" not in html
    case.refresh_from_db()
    assert (case.state, case.note) == ("dismissed", "already called")
    assert AuditEntry.objects.filter(alert=case, action="dismissed", via="console").exists()


def test_dismissing_without_a_reason_is_refused(shop, agent_user):
    offer = _proposed()[0]
    response = _client(agent_user).post(
        reverse("console:offer-dismiss", args=[offer.pk]), {"reason": ""}, **HTMX
    )
    assert "Say why" in response.content.decode()
    offer.refresh_from_db()
    assert offer.state == "proposed"


def test_today_reads_cases_in_a_fixed_number_of_bounded_queries(shop, agent_user):
    client = _client(agent_user)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("console:today"))
    people = [customer(f"more{i}") for i in range(8)]
    after_scoring(run=scored_run([{"customer": c, "probability": 0.9} for c in people]), now=NOW)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("console:today"))
    assert len(many) == len(few)
    for query in (q["sql"] for q in many.captured_queries):
        assert "ml_customerscore" not in query
        if 'FROM "retention_alert"' in query:
            assert "LIMIT" in query or '"retention_alert"."id" IN' in query, query


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


def _guarded_urls(pk: int = 1) -> list[tuple[str, tuple[str, ...]]]:
    """(url, roles) of every console view but logging in and out, for ids ``pk`` and
    customer c0."""
    found = []
    for pattern in console_urls.urlpatterns:
        if pattern.name in {"login", "logout"}:
            continue
        assert hasattr(pattern.callback, "console_roles"), f"{pattern.name} has no role check"
        made_up = {"pk": pk, "external_id": "c0"}
        kwargs = {name: made_up[name] for name in pattern.pattern.converters}
        found.append((reverse(f"console:{pattern.name}", kwargs=kwargs), pattern.callback))
    return [(url, view.console_roles) for url, view in found]


def _request(client: Client, url: str):
    response = client.get(url)
    return client.post(url) if response.status_code == 405 else response


def test_anonymous_visitors_are_sent_to_log_in_from_every_console_page(shop):
    for url, _ in _guarded_urls():
        response = _request(Client(), url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("console:login")), url


def test_agents_get_403_on_every_admin_only_page_and_action(shop, agent_user):
    client = _client(agent_user)
    version = ModelVersion.objects.get()
    admin_only = [url for url, roles in _guarded_urls(version.pk) if roles == (ADMIN,)]
    assert {reverse("console:overview"), reverse("console:models")} <= set(admin_only)
    for url in admin_only:
        assert _request(client, url).status_code == 403, url
    version.refresh_from_db()
    assert version.status != "champion"  # the refused promotion changed nothing
