"""The workflow's part of a customer's export and erasure (registered with
``customers.privacy`` by ``RetentionConfig.ready``): alerts, offers, coupons, messages,
the audit trail and the demo's sent-message files.

Erasure keeps every row campaign measurement counts (interventions with their arm and
dates, coupons with their discount) and removes what identifies the person: addresses and
texts of messages, agents' free-text notes and reasons, and the sent-message files.
"""

from __future__ import annotations

from typing import Any

from customers.models import Customer
from customers.privacy import ERASED, Erasure, rows
from retention.channels.files import sent_files_erase
from retention.models import Alert, AuditEntry, CaseReason, Coupon, Intervention, OutboxMessage
from retention.services.alerts import alert_close
from retention.services.audit import Action, Actor, audit_write

ERASED_NOTE = "closed: the customer's personal data was erased"
ERASED_UNSENT = "not sent: the customer's personal data was erased"
# Audit-detail keys whose values agents type (or providers echo, addresses included).
FREE_TEXT_KEYS = ("note", "reason")
# Offers not yet sent when their customer is erased are blocked, as an opt-out blocks them.
UNSENT_STATES = (
    Intervention.State.PROPOSED,
    Intervention.State.APPROVED,
    Intervention.State.EDITED,
    Intervention.State.QUEUED,
)


def _actor(user: Any, via: str) -> Actor:
    if user is None:
        return Actor(AuditEntry.Actor.AGENT, via=via)
    return Actor.agent(user, via=via)


def _audit_of(customer: Customer):
    """Entries about the customer's alerts and offers, and the records of their erasure.
    Three indexed lookups instead of one OR over two outer joins."""
    ids = set(AuditEntry.objects.filter(alert__customer=customer).values_list("pk", flat=True))
    ids |= set(
        AuditEntry.objects.filter(intervention__customer=customer).values_list("pk", flat=True)
    )
    ids |= set(
        AuditEntry.objects.filter(
            action=Action.CUSTOMER_ERASED, detail__customer=customer.external_id
        ).values_list("pk", flat=True)
    )
    return AuditEntry.objects.filter(pk__in=ids)


def workflow_export(customer: Customer) -> dict[str, Any]:
    return {
        "alerts": rows(Alert.objects.filter(customer=customer).order_by("raised_at", "id")),
        "case_reasons": rows(
            CaseReason.objects.filter(alert__customer=customer).order_by("alert_id", "id")
        ),
        "interventions": rows(
            Intervention.objects.filter(customer=customer).order_by("proposed_at", "id")
        ),
        "coupons": rows(Coupon.objects.filter(customer=customer).order_by("created_at", "id")),
        "outbox_messages": rows(
            OutboxMessage.objects.filter(intervention__customer=customer).order_by(
                "created_at", "id"
            )
        ),
        "audit_entries": rows(_audit_of(customer).order_by("at", "id")),
    }


def _free_text_erased(detail: Any, erasure: Erasure) -> Any:
    if not isinstance(detail, dict):
        return erasure.redact(detail)
    return {
        key: ERASED if key in FREE_TEXT_KEYS and value else erasure.redact(value)
        for key, value in detail.items()
    }


def _erase_texts(erasure: Erasure) -> dict[str, int]:
    customer = erasure.customer
    entries = [
        e for e in _audit_of(customer).exclude(detail={}) if e.action != Action.CUSTOMER_ERASED
    ]
    for entry in entries:
        entry.detail = _free_text_erased(entry.detail, erasure)
    AuditEntry.objects.bulk_update(entries, ["detail"])

    alerts = list(Alert.objects.filter(customer=customer))
    for alert in alerts:
        alert.note = ERASED if alert.note else ""
        alert.reasons = erasure.redact(alert.reasons)
    Alert.objects.bulk_update(alerts, ["note", "reasons"])

    interventions = list(Intervention.objects.filter(customer=customer))
    for intervention in interventions:
        intervention.dismiss_reason = ERASED if intervention.dismiss_reason else ""
        intervention.block_reason = erasure.redact(intervention.block_reason)
    Intervention.objects.bulk_update(interventions, ["dismiss_reason", "block_reason"])

    messages = list(OutboxMessage.objects.filter(intervention__customer=customer))
    for message in messages:
        message.recipient = message.subject = message.body = ""
        message.last_error = erasure.redact(message.last_error)
        if message.state == OutboxMessage.State.PENDING:
            message.state, message.last_error = OutboxMessage.State.FAILED, ERASED_UNSENT
    OutboxMessage.objects.bulk_update(
        messages, ["recipient", "subject", "body", "last_error", "state"]
    )
    keys = {str(m.idempotency_key) for m in messages}
    files = sent_files_erase(keys=keys, holds_personal_data=erasure.holds_personal_data)
    return {
        "audit_entries": len(entries),
        "alerts": len(alerts),
        "interventions": len(interventions),
        "outbox_messages": len(messages),
        "sent_file_messages": files,
    }


def _stop_work(erasure: Erasure) -> dict[str, int]:
    """Close the customer's open alerts and block their unsent offers, audited: nobody
    should work on, or send to, a person who asked to be forgotten."""
    actor = _actor(erasure.actor, erasure.via)
    open_alerts = Alert.objects.filter(customer=erasure.customer, state__in=Alert.OPEN_STATES)
    closed = [
        alert_close(alert_id=pk, actor=actor, now=erasure.at, dismiss=True, note=ERASED_NOTE)
        for pk in open_alerts.values_list("pk", flat=True)
    ]
    unsent = list(
        Intervention.objects.select_for_update().filter(
            customer=erasure.customer, state__in=UNSENT_STATES
        )
    )
    Intervention.objects.filter(pk__in=[i.pk for i in unsent]).update(
        state=Intervention.State.BLOCKED, block_reason=ERASED_UNSENT, updated_at=erasure.at
    )
    audit_write(
        actor=actor,
        action=Action.BLOCKED,
        at=erasure.at,
        intervention_id=[i.pk for i in unsent],
        from_state=[i.state for i in unsent],
        to_state=Intervention.State.BLOCKED,
        detail={"reason": ERASED_UNSENT},
    )
    return {"alerts_closed": len(closed), "offers_blocked": len(unsent)}


def workflow_erase(erasure: Erasure) -> dict[str, int]:
    # Texts first: the entries the closing and blocking write hold no personal data.
    return _erase_texts(erasure) | _stop_work(erasure)


def erasure_record(*, customer: Customer, actor: Any, via: str, at, counts: dict) -> None:
    """The audit entry of one erasure: who asked, when, and how much was removed, under
    the customer's external id only."""
    audit_write(
        actor=_actor(actor, via),
        action=Action.CUSTOMER_ERASED,
        at=at,
        detail={"customer": customer.external_id, "counts": counts},
    )
