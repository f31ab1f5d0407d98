"""Workflow records in the admin: read-only forms, every transition an action that calls
the service the bot uses, with its limits and audit rows (audit P1-1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from retention.models import Alert, AuditEntry, Coupon, Intervention
from retention.offers import PERCENT_RANGE
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db

INTERVENTIONS = "/admin/retention/intervention/"
ALERTS = "/admin/retention/alert/"


@pytest.fixture
def proposed():
    """Proposed percent-off offers in a campaign capped at 20% off, each with its alert."""
    people = [customer(f"c{i}") for i in range(12)]
    campaign(control_share=0.3, max_percent_off=20)
    after_scoring(run=scored_run([{"customer": c, "probability": 0.9} for c in people]), now=NOW)
    offers = Intervention.objects.filter(state="proposed").order_by("pk")
    assert offers.count() >= 3
    return list(offers)


def _change_form(intervention: Intervention) -> dict:
    return {
        "customer": intervention.customer_id,
        "campaign": intervention.campaign_id,
        "alert": intervention.alert_id or "",
        "offer": intervention.offer_id,
        "offer_type": "percent_off",
        "offer_value": "95.00",
        "recommended_skus": "[]",
        "channel": "",
        "expected_net_value": intervention.expected_net_value,
        "expected_cost": intervention.expected_cost,
        "as_of": intervention.as_of.isoformat(),
        "proposed_at_0": NOW.date().isoformat(),
        "proposed_at_1": "10:00:00",
        "dismiss_reason": "",
        "audit-TOTAL_FORMS": "0",
        "audit-INITIAL_FORMS": "0",
        "audit-MIN_NUM_FORMS": "0",
        "audit-MAX_NUM_FORMS": "1000",
    }


def test_an_agent_cannot_raise_an_offer_past_the_campaign_limit_through_the_change_form(
    client, agent_user, proposed
):
    """The audit's exploit: POST offer_value=95 on the change form, then approve."""
    target = proposed[0]
    client.force_login(agent_user)
    client.post(f"{INTERVENTIONS}{target.pk}/change/", _change_form(target))
    client.post(INTERVENTIONS, {"action": "approve_selected", "_selected_action": [target.pk]})
    target.refresh_from_db()
    assert target.offer_value <= 20
    assert not Coupon.objects.filter(value__gt=20).exists()


def test_an_agent_cannot_close_an_alert_through_the_change_form(client, agent_user, proposed):
    alert = Alert.objects.get(pk=proposed[0].alert_id)
    client.force_login(agent_user)
    client.post(
        f"{ALERTS}{alert.pk}/change/",
        {
            "customer": alert.customer_id,
            "rule": alert.rule_id,
            "state": "resolved",
            "resolution": "won_back",
            "severity": "high",
            "queue": alert.queue,
            "note": "",
        },
    )
    alert.refresh_from_db()
    assert alert.state == Alert.State.OPEN
    assert alert.resolution == ""


def test_workflow_change_forms_have_no_save_button(client, agent_user, admin_user, proposed):
    alert_id = proposed[0].alert_id
    for user in (agent_user, admin_user):
        client.force_login(user)
        for url in (f"{INTERVENTIONS}{proposed[0].pk}/change/", f"{ALERTS}{alert_id}/change/"):
            page = client.get(url)
            assert page.status_code == 200, url
            assert 'name="_save"' not in page.content.decode(), url


def test_editing_an_offer_in_the_admin_is_refused_outside_the_campaign_limits(
    client, agent_user, proposed
):
    target = proposed[0]
    before = target.offer_value
    client.force_login(agent_user)
    response = client.post(
        INTERVENTIONS,
        {
            "action": "edit_offer",
            "_selected_action": [target.pk],
            "apply": "1",
            "offer_type": "percent_off",
            "offer_value": "95",
        },
        follow=True,
    )
    target.refresh_from_db()
    assert target.state == Intervention.State.PROPOSED
    assert target.offer_value == before
    assert PERCENT_RANGE.format(limit=20) in response.content.decode()
    assert not Coupon.objects.exists()


def test_editing_an_offer_in_the_admin_goes_through_the_service_and_is_audited(
    client, agent_user, proposed
):
    target = proposed[0]
    client.force_login(agent_user)
    client.post(
        INTERVENTIONS,
        {
            "action": "edit_offer",
            "_selected_action": [target.pk],
            "apply": "1",
            "offer_type": "percent_off",
            "offer_value": "15",
        },
    )
    target.refresh_from_db()
    assert target.offer_value == Decimal("15")
    assert target.state in {Intervention.State.QUEUED, Intervention.State.BLOCKED}
    edited = target.audit.get(action="edited")
    assert edited.actor == agent_user and edited.via == "admin"


def test_the_edit_offer_action_asks_for_the_new_offer_first(client, agent_user, proposed):
    client.force_login(agent_user)
    page = client.post(
        INTERVENTIONS, {"action": "edit_offer", "_selected_action": [proposed[0].pk]}
    )
    assert page.status_code == 200
    assert 'name="offer_value"' in page.content.decode()
    assert not AuditEntry.objects.filter(action="edited").exists()


def test_dismissing_offers_in_the_admin_records_the_reason_and_closes_the_alert(
    client, agent_user, proposed
):
    client.force_login(agent_user)
    client.post(
        INTERVENTIONS,
        {
            "action": "dismiss_selected",
            "_selected_action": [proposed[0].pk],
            "apply": "1",
            "reason": "customer called us already",
        },
    )
    dismissed = Intervention.objects.get(pk=proposed[0].pk)
    assert dismissed.state == Intervention.State.DISMISSED
    assert dismissed.dismiss_reason == "customer called us already"
    assert dismissed.audit.filter(action="dismissed", actor=agent_user).exists()
    alert = Alert.objects.get(pk=dismissed.alert_id)
    assert alert.state == Alert.State.DISMISSED and alert.closed_at is not None
    assert alert.note == "customer called us already"


def test_resolving_an_alert_in_the_admin_sets_closed_at_and_audits(client, agent_user, proposed):
    alert_id = proposed[0].alert_id
    client.force_login(agent_user)
    client.post(
        ALERTS,
        {
            "action": "resolve_selected",
            "_selected_action": [alert_id],
            "apply": "1",
            "note": "called, will order next week",
        },
    )
    alert = Alert.objects.get(pk=alert_id)
    assert alert.state == Alert.State.RESOLVED
    assert alert.closed_at is not None
    assert alert.note == "called, will order next week"
    assert alert.audit.filter(action="resolved", actor=agent_user, via="admin").exists()


def test_assigning_an_alert_in_the_admin_audits_it(client, agent_user, admin_user, proposed):
    alert_id = proposed[0].alert_id
    client.force_login(admin_user)
    client.post(
        ALERTS,
        {
            "action": "assign_selected",
            "_selected_action": [alert_id],
            "apply": "1",
            "assignee": agent_user.pk,
        },
    )
    alert = Alert.objects.get(pk=alert_id)
    assert alert.assigned_to == agent_user
    assert alert.audit.filter(action="assigned", actor=admin_user).exists()


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", password="pw-for-tests")


def test_nobody_can_add_change_or_delete_audit_entries_in_the_admin(
    client, superuser, admin_user, proposed
):
    entry = AuditEntry.objects.filter(intervention=proposed[0]).first()
    for user in (superuser, admin_user):
        client.force_login(user)
        assert client.get("/admin/retention/auditentry/add/").status_code == 403
        client.post(
            "/admin/retention/auditentry/add/",
            {"at_0": "2026-07-01", "at_1": "10:00", "actor_kind": "agent", "action": "forged"},
        )
        client.post(f"/admin/retention/auditentry/{entry.pk}/change/", {"action": "forged"})
        client.post(f"/admin/retention/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert not AuditEntry.objects.filter(action="forged").exists()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@pytest.fixture
def failed_sms(db):
    from tests.factories import outbox_sms

    message = outbox_sms(
        campaign(), customer("f1"), intervention_state="failed", at=NOW, state="failed"
    )
    message.attempts, message.last_error = 6, "provider said no"
    message.save()
    return message


def test_admins_send_a_failed_message_again_through_the_service(client, admin_user, failed_sms):
    client.force_login(admin_user)
    client.post(
        "/admin/retention/outboxmessage/",
        {"action": "retry_selected", "_selected_action": [failed_sms.pk]},
    )
    failed_sms.refresh_from_db()
    assert (failed_sms.state, failed_sms.attempts, failed_sms.last_error) == ("pending", 0, "")
    intervention = failed_sms.intervention
    intervention.refresh_from_db()
    assert intervention.state == Intervention.State.QUEUED
    assert intervention.audit.filter(action="retried", actor=admin_user, via="admin").exists()


def test_agents_cannot_resend_messages(client, agent_user, failed_sms):
    client.force_login(agent_user)
    client.post(
        "/admin/retention/outboxmessage/",
        {"action": "retry_selected", "_selected_action": [failed_sms.pk]},
    )
    failed_sms.refresh_from_db()
    assert failed_sms.state == "failed"
