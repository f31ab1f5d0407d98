"""Sending through a real Celery worker and a local SMS provider: exactly once, whatever
the broker or the worker does, and nothing lost when the provider is down."""

import datetime as dt
import time

import pytest
from django.core import mail
from django.utils import timezone

from retention.channels.sms import HttpSmsChannel
from retention.models import Intervention, OutboxMessage
from retention.services.audit import Actor
from retention.services.interventions import intervention_approve
from retention.services.outbox import UNCERTAIN, outbox_send
from retention.services.pipeline import after_scoring
from retention.tasks import send_outbox_task
from tests.factories import NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def proposed(transactional_db, agent_user):
    people = [customer(f"c{i}") for i in range(10)]
    run = scored_run([{"customer": c, "probability": 0.9, "monetary_avg": 50.0} for c in people])
    campaign(channels=["sms"], control_share=0.2)
    after_scoring(run=run, now=NOW)
    return Intervention.objects.filter(state="proposed").order_by("pk").first()


def approve(intervention, user):
    return intervention_approve(
        intervention_id=intervention.pk, actor=Actor.agent(user, via="bot"), now=NOW
    )


def expire_leases() -> None:
    """What the passing of ``OUTBOX_LEASE_SECONDS`` does to the claims of a dead worker."""
    OutboxMessage.objects.filter(state="sending").update(
        claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_an_approved_offer_is_sent_once_even_when_the_task_is_delivered_twice(
    sms_provider, proposed, agent_user, live_worker
):
    approve(proposed, agent_user)  # enqueues the send on commit
    message = OutboxMessage.objects.get(intervention=proposed)
    send_outbox_task.delay([message.pk]).get(timeout=20)
    send_outbox_task.delay([message.pk]).get(timeout=20)
    wait_for(lambda: Intervention.objects.get(pk=proposed.pk).state == "sent")
    assert sms_provider.requests == {str(message.idempotency_key): 1}
    message.refresh_from_db()
    assert message.state == "sent" and message.provider_message_id == "sms-1"
    assert "% off" in sms_provider.delivered[str(message.idempotency_key)]["text"]


def test_a_worker_killed_after_the_provider_call_does_not_cause_a_second_message(
    sms_provider, proposed, agent_user, live_worker, monkeypatch, settings
):
    settings.OUTBOX_LEASE_SECONDS = 1
    real_send = HttpSmsChannel.send

    def send_then_die(self, **kwargs):
        real_send(self, **kwargs)
        raise SystemExit("worker killed")  # nothing after the provider call runs

    with monkeypatch.context() as patched:
        # The first delivery of the send task runs here, in this thread, and dies.
        delivered = []
        patched.setattr(send_outbox_task, "delay", delivered.append)
        patched.setattr(HttpSmsChannel, "send", send_then_die)
        message = OutboxMessage.objects.get(intervention=approve(proposed, agent_user))
        assert delivered == [[message.pk]]
        with pytest.raises(SystemExit):
            outbox_send(now=NOW, ids=[message.pk])
    message.refresh_from_db()
    assert message.state == "sending"  # the worker died before recording anything

    time.sleep(1.1)  # the dead worker's lease runs out; the broker redelivers its task
    send_outbox_task.delay([message.pk]).get(timeout=20)
    send_outbox_task.delay([message.pk]).get(timeout=20)
    message.refresh_from_db()
    key = str(message.idempotency_key)
    assert message.state == "sent"
    assert sms_provider.requests[key] == 2 and len(sms_provider.delivered) == 1  # the key deduped


def test_email_that_may_have_gone_out_is_failed_as_uncertain_not_resent(
    proposed, agent_user, monkeypatch
):
    proposed.campaign.channels = ["email"]
    proposed.campaign.save()
    approve(proposed, agent_user)
    message = OutboxMessage.objects.get(intervention=proposed)
    from retention.channels.email import EmailChannel

    real_send = EmailChannel.send

    def send_then_die(self, **kwargs):
        real_send(self, **kwargs)
        raise SystemExit("worker killed")

    monkeypatch.setattr(EmailChannel, "send", send_then_die)
    with pytest.raises(SystemExit):
        outbox_send(now=NOW, ids=[message.pk])
    monkeypatch.undo()
    expire_leases()
    outbox_send(now=NOW.replace(minute=1), ids=[message.pk])
    message.refresh_from_db()
    assert len(mail.outbox) == 1
    assert message.state == "failed" and message.last_error == UNCERTAIN


def test_a_provider_outage_retries_with_backoff_then_fails_keeping_the_message(
    sms_provider, proposed, agent_user, live_worker, settings
):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    sms_provider.down = True
    approve(proposed, agent_user)
    message = OutboxMessage.objects.get(intervention=proposed)
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).state == "failed")
    message.refresh_from_db()
    assert message.attempts == 3 and sms_provider.requests[str(message.idempotency_key)] == 3
    assert "gave up after 3 attempts" in message.last_error and "503" in message.last_error
    assert message.body and message.recipient == "+4915100000000"
    failed = Intervention.objects.get(pk=proposed.pk)
    assert failed.state == "failed"
    assert failed.audit.filter(action="failed", detail__reason=message.last_error).exists()
