"""A customer's privacy rights: everything held about them exported as one document, and
their personal data erased from every table, run file and sent-message file, while the
campaigns they took part in measure the same as before (audit P2-5)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.mail import EmailMessage, get_connection
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Cast
from django.urls import reverse

from bots.models import AlertCard, ChatPrompt
from customers.models import Customer, Event, Order, Product
from customers.privacy import customer_erase, customer_export
from customers.privacy_admin import ERASE_TITLE, ERASED_DONE
from customers.selectors import CUSTOMER_NOT_FOUND
from ml.models import CustomerScore, ScoringRun
from retention.channels.files import FileSmsChannel
from retention.models import (
    Alert,
    AuditEntry,
    ContactPolicy,
    Intervention,
    MessageTemplate,
    OutboxMessage,
)
from retention.services.alerts import alert_close
from retention.services.audit import Actor
from retention.services.interventions import intervention_approve, intervention_dismiss
from retention.services.outbox import outbox_send
from retention.services.outcomes import campaign_evaluate, interventions_settle
from retention.services.pipeline import after_scoring
from tests.factories import AS_OF, NOW, campaign, customer, scored_run
from tests.ml.history import at, order

pytestmark = pytest.mark.django_db

NAMES = [
    "Jane Doerr",
    "Max Ostrowski",
    "Ilse Brandtner",
    "Otto Wendelin",
    "Greta Falkenrath",
    "Paul Rasmussen",
    "Lena Quistorp",
    "Hugo Settegast",
    "Rosa Kellermeyer",
    "Emil Zapfenberg",
    "Nora Lichtwark",
    "Karl Umbreit",
    "Wanda Heimsoth",
    "Felix Trautwein",
    "Alma Vosskuhl",
    "Bruno Achterberg",
    "Clara Mittelstaedt",
    "Dieter Nolting",
    "Erika Pfannkuch",
    "Fritz Oberlercher",
]
EVALUATED_ON = dt.date(2026, 7, 30)
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def personal_values(person: Customer) -> list[str]:
    return [person.name, person.email, person.phone, person.phone.replace(" ", "")]


def tables_holding(values: list[str]) -> list[str]:
    """``model.field`` of every text or JSON column, in every installed model, that holds
    one of ``values`` (case-insensitive)."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, TEXT_FIELDS):
                continue
            text = model.objects.annotate(_text=Cast(field.name, models.TextField()))
            for value in values:
                if text.filter(_text__icontains=value).exists():
                    found.append(f"{model._meta.label}.{field.name}: {value}")
    return found


def files_holding(root: Path, values: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("utf-8", errors="replace").lower()
            found += [f"{path}: {v}" for v in values if v.lower() in content]
    return found


def run_file_ids(run: ScoringRun) -> np.ndarray:
    with run.frame.open("rb") as handle, np.load(handle) as saved:
        return saved["customer_id"]


@pytest.fixture
def demo_files(settings, tmp_path):
    """The demo's file channels, writing under a directory of this test."""
    settings.VAR_DIR = tmp_path
    settings.EMAIL_FILE_PATH = tmp_path / "sent-email"
    settings.EMAIL_BACKEND = "retention.channels.files.MaskedFileEmailBackend"
    settings.RETENTION_CHANNELS = {
        **settings.RETENTION_CHANNELS,
        "sms": "retention.channels.files.FileSmsChannel",
    }
    return tmp_path


@pytest.fixture
def shop(demo_files, agent_user, admin_user):
    """Twenty customers with orders, events and two scoring runs, two campaigns on the
    same rule (e-mail and SMS), offers sent through the demo's files, and a customer
    treated in both campaigns with notes, a chat card and a console log entry about them:
    returns that customer and the campaigns."""
    ContactPolicy.objects.update_or_create(pk=1, defaults={"max_per_7_days": 5})
    # Templates are the admin's to edit: one that names the customer in full.
    MessageTemplate.objects.update(
        body="Dear {{ customer.name }} ({{ customer.email }}, {{ customer.phone }}): "
        "{{ offer }}{% if coupon %} with code {{ coupon.code }}{% endif %}"
    )
    mug = Product.objects.create(sku="MUG-1", name="Mug", category="kitchen", price=80)
    people = []
    for i, name in enumerate(NAMES):
        first = name.split()[0].lower()
        person = customer(
            f"P{i:02d}", name=name, email=f"{first}.{i}@example.org", phone=f"+49 151 {i:07d}"
        )
        order(person, "2026-03-01", "80", product=mug)
        Event.objects.create(
            customer=person,
            kind="review",
            value=2,
            occurred_at=at("2026-03-05"),
            properties={"text": f"{name} says: too slow"},
        )
        people.append(person)
    rows = [{"customer": p, "probability": 0.9, "monetary_avg": 80.0} for p in people]
    scored_run(rows, as_of=AS_OF - dt.timedelta(days=7))
    run = scored_run(rows)
    by_email = campaign(control_share=0.3, channels=["email"])
    by_sms = campaign(name="Win back by SMS", control_share=0.3, channels=["sms"])
    after_scoring(run=run, now=NOW)

    treated_twice = (
        Intervention.objects.filter(arm="treatment", campaign=by_email)
        .filter(customer__interventions__campaign=by_sms, customer__interventions__arm="treatment")
        .order_by("customer_id")
    )
    person = treated_twice.first().customer
    agent = Actor.agent(agent_user, via="bot", chat_id="777")
    for intervention in Intervention.objects.filter(state="proposed", arm="treatment"):
        if intervention.customer_id == person.pk or intervention.pk % 3:
            intervention_approve(intervention_id=intervention.pk, actor=agent, now=NOW)
        else:
            intervention_dismiss(
                intervention_id=intervention.pk, actor=agent, now=NOW, reason="no, not now"
            )
    outbox_send(now=NOW)
    for other in people[::2]:
        order(other, "2026-07-10", "120")
    order(person, "2026-07-12", "95")
    interventions_settle(now=at("2026-07-29"))

    alert = Alert.objects.filter(customer=person).first()
    alert_close(
        alert_id=alert.pk,
        actor=agent,
        now=NOW,
        dismiss=False,
        note=f"called {person.name} on {person.phone}, will order",
    )
    AlertCard.objects.create(alert=alert, chat_id=777, message_id=5, state="sent", created_at=NOW)
    ChatPrompt.objects.create(
        chat_id=777,
        kind="dismiss_reason",
        intervention_id=Intervention.objects.filter(customer=person).first().pk,
        expires_at=NOW,
    )
    LogEntry.objects.create(
        user=admin_user,
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(person.pk),
        object_repr=str(person),
        action_flag=CHANGE,
        change_message=f"Changed email to {person.email}",
    )
    return person, [by_email, by_sms]


def outcomes(campaigns) -> list[tuple]:
    measured = [campaign_evaluate(campaign=c, as_of=EVALUATED_ON) for c in campaigns]
    return [(o.arms, o.uplift, o.ci_low, o.ci_high, o.net_incremental_revenue) for o in measured]


def test_the_export_holds_orders_events_scores_alerts_offers_and_messages(shop):
    person, _ = shop
    document = customer_export(customer=person, now=NOW)
    assert document["external_id"] == person.external_id
    assert document["customers"]["profile"]["email"] == person.email
    orders = document["customers"]["orders"]
    assert len(orders) == Order.objects.filter(customer=person).count() >= 2
    assert orders[0]["lines"][0]["sku"] == "MUG-1" and orders[0]["lines"][0]["quantity"] == 1
    assert document["customers"]["events"][0]["properties"]["text"].startswith(person.name)
    assert len(document["ml"]["scores"]) == 2 and len(document["ml"]["run_features"]) == 2
    assert document["ml"]["run_features"][0]["values"]["monetary_avg"] == 80.0
    workflow = document["retention"]
    assert {a["customer_id"] for a in workflow["alerts"]} == {person.pk}
    assert {i["arm"] for i in workflow["interventions"]} == {"treatment"}
    assert len(workflow["interventions"]) == 2 and len(workflow["coupons"]) == 2
    assert {m["channel"] for m in workflow["outbox_messages"]} == {"email", "sms"}
    assert all(person.name in m["body"] for m in workflow["outbox_messages"])
    assert {"approved", "queued", "sent", "converted", "resolved"} <= {
        e["action"] for e in workflow["audit_entries"]
    }
    assert len(document["bots"]["alert_cards"]) == 1
    assert len(document["bots"]["chat_prompts"]) == 1
    json.dumps(document, cls=DjangoJSONEncoder)


def test_erasure_leaves_no_table_run_file_or_sent_file_holding_their_personal_data(
    shop, admin_user, demo_files, django_capture_on_commit_callbacks
):
    person, campaigns = shop
    values = personal_values(person)
    assert tables_holding(values) and files_holding(demo_files, values)
    runs = list(ScoringRun.objects.exclude(frame=""))
    old_files = [Path(run.frame.path) for run in runs]
    assert all(person.pk in run_file_ids(run) for run in runs)
    scored = [run.customers_scored for run in runs]
    before = outcomes(campaigns)

    with django_capture_on_commit_callbacks(execute=True):
        counts = customer_erase(customer=person, actor=admin_user, via="console", now=NOW)

    assert tables_holding(values) == []
    assert files_holding(demo_files, values) == []
    assert not any(path.exists() for path in old_files)
    for run in ScoringRun.objects.exclude(frame=""):
        assert person.pk not in run_file_ids(run) and len(run_file_ids(run)) == len(NAMES) - 1
    assert not CustomerScore.objects.filter(customer=person).exists()
    assert [r.customers_scored for r in ScoringRun.objects.filter(pk__in=[r.pk for r in runs])] == (
        scored
    )
    assert outcomes(campaigns) == before
    # The other customers' messages stay in the files, their addresses masked.
    sms = (demo_files / "sent-sms.jsonl").read_text().splitlines()
    assert sms and all(json.loads(line)["to"].startswith("+49***") for line in sms)
    assert counts["ml"] == {"scores": 2, "run_files": 2}
    assert counts["retention"]["sent_file_messages"] == 2
    erased = AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_ERASED)
    assert erased.actor == admin_user and erased.detail["customer"] == person.external_id
    person.refresh_from_db()
    assert person.erased_at == NOW and not person.has_consent("email")


def test_erasure_blocks_unsent_offers_and_closes_open_alerts_audited(shop, admin_user):
    person, _ = shop
    intervention = Intervention.objects.filter(customer=person).first()
    Intervention.objects.filter(pk=intervention.pk).update(state="approved")
    message = OutboxMessage.objects.filter(intervention=intervention).get()
    OutboxMessage.objects.filter(pk=message.pk).update(state="pending")
    Alert.objects.filter(customer=person).update(state="open", closed_at=None)

    counts = customer_erase(customer=person, actor=admin_user, via="api", now=NOW)

    intervention.refresh_from_db()
    message.refresh_from_db()
    assert intervention.state == "blocked" and message.state == "failed"
    assert not Alert.objects.filter(customer=person, state__in=Alert.OPEN_STATES).exists()
    assert counts["retention"]["offers_blocked"] == 1 and counts["retention"]["alerts_closed"] >= 1
    blocked = AuditEntry.objects.get(intervention=intervention, action="blocked")
    assert blocked.actor == admin_user and blocked.via == "api"
    assert not ChatPrompt.objects.exists()


def test_erasing_twice_changes_nothing_more_and_succeeds(shop, admin_user):
    person, campaigns = shop
    customer_erase(customer=person, actor=admin_user, via="console", now=NOW)
    before = outcomes(campaigns)
    counts = customer_erase(customer=person, actor=admin_user, via="console", now=NOW)
    assert counts["ml"] == {"scores": 0, "run_files": 0}
    assert counts["retention"]["sent_file_messages"] == 0
    assert outcomes(campaigns) == before
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CUSTOMER_ERASED).count() == 2


def test_the_commands_export_to_a_file_and_erase_by_external_id(shop, tmp_path):
    person, _ = shop
    target = tmp_path / "export.json"
    call_command("customer_export", person.external_id, "--output", str(target))
    document = json.loads(target.read_text())
    assert document["customers"]["profile"]["name"] == person.name
    out = io.StringIO()
    call_command("customer_erase", person.external_id, stdout=out)
    assert f"Erased customer {person.external_id}" in out.getvalue()
    assert tables_holding(personal_values(person)) == []


@pytest.mark.smoke
@pytest.mark.parametrize("command", ["customer_export", "customer_erase"])
def test_the_commands_refuse_an_unknown_id_naming_it(db, command):
    with pytest.raises(CommandError) as raised:
        call_command(command, "NO-SUCH-ID")
    assert str(raised.value) == CUSTOMER_NOT_FOUND.format(external_id="NO-SUCH-ID")


@pytest.mark.smoke
def test_a_customer_without_workflow_data_is_exported_and_erased(demo_files, admin_user):
    person = customer("LONE", name="Lone Wolfsgruber", phone="+49 170 5550101")
    order(person, "2026-03-01")
    assert customer_export(customer=person, now=NOW)["customers"]["orders"]
    counts = customer_erase(customer=person, actor=None, via="command", now=NOW)
    assert counts["customers"] == {"customers": 1, "events": 0, "admin_log_entries": 0}
    assert tables_holding(personal_values(person)) == []
    assert AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_ERASED).actor is None


def test_only_admins_export_or_erase_through_the_api(shop, admin_api, agent_api, client):
    person, _ = shop
    export = reverse("customer-export", args=[person.external_id])
    erase = reverse("customer-erase", args=[person.external_id])
    assert client.get(export).status_code == 401
    assert client.post(erase).status_code == 401
    assert agent_api.get(export).status_code == 403
    assert agent_api.post(erase).status_code == 403
    response = admin_api.get(export)
    assert response.status_code == 200 and response.json()["customers"]["orders"]
    missing = admin_api.post(reverse("customer-erase", args=["NO-SUCH-ID"]))
    assert missing.status_code == 404
    assert missing.json()["detail"] == CUSTOMER_NOT_FOUND.format(external_id="NO-SUCH-ID")
    response = admin_api.post(erase)
    assert response.status_code == 200 and response.json()["erased"]["ml"]["run_files"] == 2
    assert tables_holding(personal_values(person)) == []


def test_an_admin_erases_a_customer_with_audit_rows_from_the_customer_list(
    shop, admin_user, client
):
    person, _ = shop
    assert AuditEntry.objects.filter(intervention__customer=person).exists()
    client.force_login(admin_user)
    changelist = reverse("admin:customers_customer_changelist")
    chosen = {"action": "erase_selected", "_selected_action": [person.pk]}
    confirm = client.post(changelist, chosen)
    assert confirm.status_code == 200 and ERASE_TITLE in confirm.content.decode()
    assert Customer.objects.get(pk=person.pk).erased_at is None
    done = client.post(changelist, {**chosen, "confirm": "yes"}, follow=True)
    assert ERASED_DONE.format(count=1) in done.content.decode()
    assert tables_holding(personal_values(person)) == []
    exported = client.post(changelist, {**chosen, "action": "export_selected"})
    assert exported["Content-Type"] == "application/json"
    assert json.loads(exported.content)[0]["external_id"] == person.external_id


def test_agents_get_no_privacy_actions_on_the_customer_list(shop, agent_user, client):
    person, _ = shop
    client.force_login(agent_user)
    changelist = reverse("admin:customers_customer_changelist")
    page = client.get(changelist)
    assert page.status_code == 200 and b"erase_selected" not in page.content
    chosen = {"action": "erase_selected", "_selected_action": [person.pk], "confirm": "yes"}
    client.post(changelist, chosen)
    assert Customer.objects.get(pk=person.pk).erased_at is None


def test_the_demo_files_keep_only_masked_addresses(demo_files):
    FileSmsChannel().send(
        recipient="+49 151 2345673", subject="", body="10% off", key="k-1", meta={}
    )
    with get_connection() as connection:
        EmailMessage(
            "Offer", "10% off", to=["jane.doerr@example.org"], connection=connection
        ).send()
    sms = json.loads((demo_files / "sent-sms.jsonl").read_text())
    assert sms["to"] == "+49***73"
    mail = next((demo_files / "sent-email").glob("*.log")).read_text()
    assert "To: j***@example.org" in mail and "jane.doerr" not in mail


@pytest.mark.smoke
def test_a_customer_sent_again_after_erasure_stays_erased(demo_files, admin_api):
    person = customer("BACK", name="Rita Wiederkehr", phone="+49 170 5550199")
    before = personal_values(person)
    customer_erase(customer=person, actor=None, via="command", now=NOW)
    again = {
        "external_id": "BACK",
        "name": "Rita Wiederkehr",
        "email": "rita@example.org",
        "phone": "+49 170 5550199",
        "email_consent": True,
        "country": "AT",
    }
    response = admin_api.post(reverse("customers-bulk"), [again], format="json")
    assert response.status_code == 200, response.content
    person.refresh_from_db()
    assert (person.name, person.email, person.phone, person.email_consent) == ("", "", "", False)
    assert person.country == "AT"  # not personal: it still updates
    assert tables_holding(before) == []
