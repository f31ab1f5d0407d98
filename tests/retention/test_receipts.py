"""Delivery receipts against the state of the message they name."""

from __future__ import annotations

import json
import time

import pytest

from retention.channels.webhook import signature
from retention.models import OutboxMessage
from retention.services.outbox import RECEIPT_NOT_SENT
from tests.factories import NOW, campaign, customer, outbox_sms

SECRET = "receipt-secret"


def receive(client, receipts: list[dict]):
    body = json.dumps(receipts).encode()
    stamp = str(int(time.time()))
    return client.post(
        "/api/v1/outbox/receipts",
        body,
        content_type="application/json",
        HTTP_X_RETENTION_TIMESTAMP=stamp,
        HTTP_X_RETENTION_SIGNATURE=signature(SECRET, stamp, body),
    )


@pytest.mark.django_db
def test_it_refuses_a_delivered_receipt_for_a_message_never_sent(client, settings):
    settings.RECEIPTS_SECRET = SECRET
    message = outbox_sms(campaign(), customer("zoe"), intervention_state="queued", at=NOW)

    answer = receive(client, [{"reference": str(message.idempotency_key), "status": "delivered"}])

    assert answer.status_code == 200
    assert answer.json()["results"] == [{"index": 0, "error": RECEIPT_NOT_SENT}]
    message.refresh_from_db()
    assert message.state == "pending" and message.delivered_at is None
    assert message.intervention.state == "queued"


@pytest.mark.django_db
def test_a_receipt_for_a_message_handed_to_the_provider_counts_even_before_it_is_recorded(
    client, settings
):
    settings.RECEIPTS_SECRET = SECRET
    message = outbox_sms(
        campaign(),
        customer("zoe"),
        intervention_state="queued",
        at=NOW,
        state="sending",
        send_started_at=NOW,
    )

    answer = receive(client, [{"reference": str(message.idempotency_key), "status": "delivered"}])

    assert answer.json()["results"] == [{"index": 0, "state": "delivered"}]
    assert OutboxMessage.objects.get(pk=message.pk).intervention.state == "delivered"
