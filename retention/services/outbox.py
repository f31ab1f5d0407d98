"""Sending the outbox: claim due messages, hand each to its channel's backend, record the
outcome. Safe against a task delivered twice and a worker killed mid-send.

A batch is claimed in one short transaction (``pending`` → ``sending`` with a lease, rows
locked with SKIP LOCKED so two workers never claim the same message), sent outside any
transaction, and recorded in bulk. A message found still ``sending`` after its lease
belonged to a worker that died: it is sent again with the same idempotency key only if the
backend's provider drops repeated keys, otherwise it is failed as uncertain rather than
risk sending twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from retention.channels import Backend, PermanentFailure, TemporaryFailure, open_backend
from retention.models import AuditEntry, Intervention, OutboxMessage
from retention.services.audit import PROVIDER, SCHEDULE, Actor, audit_entry

UNCERTAIN = (
    "delivery uncertain: the worker stopped during the send and this channel cannot "
    "recognise a repeat, so it was not sent again"
)


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    retry_in: float | None = None  # seconds until the earliest retry, if any
    errors: list[str] = field(default_factory=list)


def _claim(*, ids, now: dt.datetime, limit: int) -> list[OutboxMessage]:
    due = Q(state=OutboxMessage.State.PENDING, next_attempt_at__lte=now) | Q(
        state=OutboxMessage.State.SENDING, claimed_until__lt=now
    )
    queryset = OutboxMessage.objects.filter(due)
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    with transaction.atomic():
        claimed = list(
            queryset.select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")[:limit]
        )
        lease = now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        OutboxMessage.objects.filter(pk__in=[m.pk for m in claimed]).update(
            state=OutboxMessage.State.SENDING, claimed_until=lease, attempts=F("attempts") + 1
        )
    for message in claimed:
        message.attempts += 1
    return claimed


def outbox_send(*, now: dt.datetime, ids=None, limit: int | None = None) -> SendReport:
    """Send due messages (all due, or only ``ids``); returns what happened."""
    claimed = _claim(ids=ids, now=now, limit=limit or settings.OUTBOX_BATCH)
    report = SendReport()
    backends: dict[str, Backend] = {}
    try:
        results = _send_batch(claimed, backends, now)
    finally:
        for backend in backends.values():
            backend.close()
    _record(results, now, report)
    return report


def outbox_flush(*, now: dt.datetime) -> dict[str, int]:
    """Send batch after batch until nothing is due at ``now``."""
    totals = {"sent": 0, "retrying": 0, "failed": 0}
    while True:
        report = outbox_send(now=now)
        for key in totals:
            totals[key] += getattr(report, key)
        if report.sent + report.failed + report.retrying == 0:
            return totals


def _send_batch(claimed, backends: dict, now) -> list[tuple[OutboxMessage, str, str]]:
    """Send a claimed batch. A provider answering in 50 ms would cap a worker sending one
    message at a time at 20 a second, so backends that allow it keep OUTBOX_CONCURRENCY
    sends in flight. The first message of each channel goes alone and opens its backend."""
    results, shared, alone = [], [], []
    for message in claimed:
        backend = backends.get(message.channel)
        if backend is None:  # opens it, or fails the message if the channel cannot open
            results.append(_send_one(message, backends, now))
        elif getattr(backend, "concurrent", False):  # a backend that does not say goes alone
            shared.append(message)
        else:
            alone.append(message)
    with ThreadPoolExecutor(max_workers=settings.OUTBOX_CONCURRENCY) as pool:
        in_flight = pool.map(lambda message: _send_one(message, backends, now), shared)
        results.extend(_send_one(message, backends, now) for message in alone)
        results.extend(in_flight)
    return results


def _send_one(message: OutboxMessage, backends: dict, now) -> tuple[OutboxMessage, str, str]:
    try:
        backend = backends.get(message.channel) or backends.setdefault(
            message.channel, open_backend(message.channel)
        )
        # Claimed while still "sending": its previous worker died after claiming it.
        died_mid_send = message.state == OutboxMessage.State.SENDING
        if died_mid_send and not backend.dedupes_by_key:
            return message, "failed", UNCERTAIN
        provider_id = backend.send(
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
            key=str(message.idempotency_key),
            meta={"reference": f"intervention-{message.intervention_id}"},
        )
        return message, "sent", provider_id
    except TemporaryFailure as exc:
        if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            return message, "failed", f"gave up after {message.attempts} attempts: {exc}"
        return message, "retry", str(exc)
    except PermanentFailure as exc:
        return message, "failed", str(exc)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=settings.OUTBOX_RETRY_SECONDS * 2 ** (attempts - 1))


def _record(results, now: dt.datetime, report: SendReport) -> None:
    """Write every outcome of the batch in one transaction: messages, their
    interventions and the audit rows."""
    sent, failed, retry = [], [], []
    for message, outcome, detail in results:
        message.claimed_until = None
        if outcome == "sent":
            message.state, message.sent_at, message.provider_message_id = "sent", now, detail
            message.last_error = ""
            sent.append(message)
        elif outcome == "retry":
            message.state, message.last_error = OutboxMessage.State.PENDING, detail
            message.next_attempt_at = now + _backoff(message.attempts)
            retry.append(message)
        else:
            message.state, message.last_error = OutboxMessage.State.FAILED, detail
            failed.append(message)
            report.errors.append(detail)
    with transaction.atomic():
        # What all sent messages share goes in one UPDATE; bulk_update builds a CASE
        # branch per message and field in Python, which for six fields cost more time
        # than the sends themselves.
        OutboxMessage.objects.filter(pk__in=[m.pk for m in sent]).update(
            state=OutboxMessage.State.SENT, sent_at=now, last_error="", claimed_until=None
        )
        OutboxMessage.objects.bulk_update(sent, ["provider_message_id"], batch_size=1000)
        OutboxMessage.objects.bulk_update(
            failed + retry,
            ["state", "last_error", "next_attempt_at", "claimed_until"],
            batch_size=1000,
        )
        _move(sent, Intervention.State.SENT, SCHEDULE, now, sent_at=now)
        _move(failed, Intervention.State.FAILED, SCHEDULE, now)
    report.sent, report.failed, report.retrying = len(sent), len(failed), len(retry)
    if retry:
        report.retry_in = min((m.next_attempt_at - now).total_seconds() for m in retry)


def _move(messages, state: str, actor: Actor, now, **fields) -> None:
    """Move the messages' interventions to ``state`` (only forward from queued/sent)."""
    if not messages:
        return
    ids = [m.intervention_id for m in messages]
    details = {m.intervention_id: m.last_error for m in messages}
    movable = Intervention.objects.filter(
        pk__in=ids, state__in=[Intervention.State.QUEUED, Intervention.State.SENT]
    ).exclude(state=state)
    before = dict(movable.values_list("pk", "state"))
    movable.update(state=state, updated_at=now, **fields)
    AuditEntry.objects.bulk_create(
        audit_entry(
            actor=actor,
            action=state,
            at=now,
            intervention_id=pk,
            from_state=old,
            to_state=state,
            detail={"reason": details[pk]} if details.get(pk) else None,
        )
        for pk, old in before.items()
    )


RECEIPT_STATES = {"delivered": OutboxMessage.State.DELIVERED, "failed": OutboxMessage.State.FAILED}


def outbox_receipt(
    *, reference: str, status: str, now: dt.datetime, reason: str = ""
) -> OutboxMessage:
    """A provider's delivery receipt, by our idempotency key or its message id. Receipts
    may arrive twice or out of order; a delivered message stays delivered."""
    matching = Q(provider_message_id=reference)
    if _is_uuid(reference):
        matching |= Q(idempotency_key=reference)
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(matching).first()
        if message is None:
            raise OutboxMessage.DoesNotExist(f"no message with reference {reference!r}")
        _apply_receipt(message, status, now, reason)
    return message


def _apply_receipt(message: OutboxMessage, status: str, now: dt.datetime, reason: str) -> None:
    if message.state == OutboxMessage.State.DELIVERED:
        return
    message.state = RECEIPT_STATES[status]
    if status == "delivered":
        message.delivered_at = now
    else:
        message.last_error = reason or "the provider reported a failed delivery"
    message.save(update_fields=["state", "delivered_at", "last_error"])
    target = Intervention.State.DELIVERED if status == "delivered" else Intervention.State.FAILED
    _move([message], target, PROVIDER, now)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def outbox_retry(*, message_ids, actor: Actor, now: dt.datetime) -> int:
    """Queue failed messages again (an admin's decision after a provider outage, say):
    attempts start over and the idempotency key stays, so a provider that did get an
    earlier attempt can drop the repeat. Their failed interventions go back to queued, with
    an audit row each. Messages in any other state are left alone. Returns how many."""
    with transaction.atomic():
        failed = list(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=list(message_ids), state=OutboxMessage.State.FAILED)
            .values_list("pk", "intervention_id")
        )
        ids = [pk for pk, _ in failed]
        OutboxMessage.objects.filter(pk__in=ids).update(
            state=OutboxMessage.State.PENDING,
            attempts=0,
            next_attempt_at=now,
            claimed_until=None,
            last_error="",
        )
        requeued = Intervention.objects.filter(
            pk__in=[iv for _, iv in failed], state=Intervention.State.FAILED
        )
        moved = list(requeued.values_list("pk", flat=True))
        requeued.update(state=Intervention.State.QUEUED, updated_at=now)
        AuditEntry.objects.bulk_create(
            audit_entry(
                actor=actor,
                action="retried",
                at=now,
                intervention_id=pk,
                from_state=Intervention.State.FAILED,
                to_state=Intervention.State.QUEUED,
            )
            for pk in moved
        )
        if ids:
            from retention.tasks import send_outbox_task

            transaction.on_commit(lambda: send_outbox_task.delay(ids))
    return len(ids)
