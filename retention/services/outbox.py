"""Sending the outbox: claim due messages, hand each to its channel's backend, record the
outcome. Safe against a task delivered twice, a worker killed mid-send, a worker paused
past its lease, and a database connection that drops while outcomes are recorded.

A batch is claimed in one short transaction (``pending`` → ``sending``), rows locked with
SKIP LOCKED so two workers never claim the same message. The claim carries a fencing token
stored on its rows and a lease (``claimed_until``, wall-clock time) that the worker renews
every third of ``OUTBOX_LEASE_SECONDS`` while it sends, so only a dead or frozen worker
loses its messages, and within one lease.

The batch is then sent in small groups. Each group is first marked in flight
(``send_started_at``, checked against the token, so a worker whose claim was taken over
sends nothing more), sent outside any transaction, and its outcomes recorded at once, again
only where the token still matches: a worker that lost its claim cannot overwrite the state
its successor wrote. Each send also checks, without a query, that the lease cannot have run
out since it was last renewed.

A message found still ``sending`` after its lease was claimed by a worker that stopped: if
it was never marked in flight it is simply sent; if it was, it is sent again with the same
idempotency key only when the channel's provider drops repeated keys, otherwise it is
failed as uncertain rather than risk sending it twice. Channels that cannot recognise a
repeat (email) therefore go one message per group, so a crash leaves at most the one message
really in flight uncertain. Channels that do (the HTTP ones) go ``OUTBOX_GROUP`` at a time,
which keeps the bookkeeping to two statements per group at 500+ messages a second.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from retention.channels import Backend, PermanentFailure, TemporaryFailure, open_backend
from retention.models import Intervention, OutboxMessage
from retention.services.audit import PROVIDER, SCHEDULE, Action, Actor, audit_write
from retention.signals import outbox_due

UNCERTAIN = (
    "delivery uncertain: the worker stopped during the send and this channel cannot "
    "recognise a repeat, so it was not sent again"
)
RECEIPT_NOT_SENT = "the message was never handed to the provider, so no receipt can apply"

SENT, RETRY, FAILED, RELEASE = "sent", "retry", "failed", "release"


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    retry_in: float | None = None  # seconds until the earliest retry, if any
    errors: list[str] = field(default_factory=list)


@dataclass
class _Claim:
    """What one worker holds: the token on its rows, the rows not yet recorded, and when it
    last renewed their lease (monotonic seconds)."""

    token: str
    lease: float
    ids: set[int]
    renewed_at: float = field(default_factory=time.monotonic)
    alive: bool = True  # False once the job running us lost its own lease

    def fresh(self) -> bool:
        """True while the lease cannot have run out: a third of it is kept as margin for
        the clocks of other workers, which judge it by their own wall clock."""
        return time.monotonic() - self.renewed_at < self.lease * 2 / 3

    def due_for_renewal(self) -> bool:
        return time.monotonic() - self.renewed_at >= self.lease / 3

    def until(self) -> dt.datetime:
        return timezone.now() + dt.timedelta(seconds=self.lease)


def _reconnecting(write: Callable[[], object]) -> object:
    """Run a database write, reconnecting and trying again when the connection drops or
    the database is briefly unavailable: an outcome already sent must not be lost to it."""
    for attempt in range(settings.OUTBOX_DB_RETRIES + 1):
        try:
            return write()
        except (OperationalError, InterfaceError):
            if attempt == settings.OUTBOX_DB_RETRIES or connection.in_atomic_block:
                raise
            with contextlib.suppress(DatabaseError):  # gone already; the next query reconnects
                connection.close()
            time.sleep(min(0.1 * 2**attempt, 2.0))
    raise AssertionError("unreachable")


def _claim(*, ids, now: dt.datetime, limit: int) -> tuple[_Claim, list[OutboxMessage]]:
    """Claim up to ``limit`` due messages: pending ones whose time has come, and ones left
    ``sending`` by a worker whose lease ran out."""
    lease = float(settings.OUTBOX_LEASE_SECONDS)
    claim = _Claim(token=uuid.uuid4().hex, lease=lease, ids=set())
    due = Q(state=OutboxMessage.State.PENDING, next_attempt_at__lte=now) | Q(
        state=OutboxMessage.State.SENDING, claimed_until__lt=timezone.now()
    )
    queryset = OutboxMessage.objects.filter(due)
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))

    def claim_rows() -> list[OutboxMessage]:
        with transaction.atomic():
            rows = list(
                queryset.select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")[
                    :limit
                ]
            )
            OutboxMessage.objects.filter(pk__in=[m.pk for m in rows]).update(
                state=OutboxMessage.State.SENDING,
                claimed_until=claim.until(),
                claim_token=claim.token,
            )
        return rows

    claim.renewed_at = time.monotonic()  # before the lease is written: errs on the safe side
    claimed = _reconnecting(claim_rows)
    claim.ids = {m.pk for m in claimed}
    return claim, claimed


def _renew(claim: _Claim) -> None:
    """Extend the lease of the rows still ours; rows a successor took over are dropped."""
    mine = OutboxMessage.objects.filter(claim_token=claim.token, state=OutboxMessage.State.SENDING)
    renewed_at = time.monotonic()
    kept = _reconnecting(lambda: mine.update(claimed_until=claim.until()))
    if kept != len(claim.ids):
        claim.ids &= set(_reconnecting(lambda: list(mine.values_list("pk", flat=True))))
    claim.renewed_at = renewed_at


def _start(claim: _Claim, group: list[OutboxMessage]) -> list[OutboxMessage]:
    """Mark ``group`` in flight, right before sending it; returns the messages still ours
    (all of them, unless a successor took some over after our lease ran out)."""
    pks = [m.pk for m in group]
    mine = OutboxMessage.objects.filter(
        pk__in=pks, claim_token=claim.token, state=OutboxMessage.State.SENDING
    )
    renewed_at = time.monotonic()
    marked = _reconnecting(
        lambda: mine.update(
            send_started_at=timezone.now(), attempts=F("attempts") + 1, claimed_until=claim.until()
        )
    )
    if marked != len(group):  # a successor took some over: keep only what we marked
        still = set(_reconnecting(lambda: list(mine.values_list("pk", flat=True))))
        claim.ids -= set(pks) - still
        group = [m for m in group if m.pk in still]
    elif len(claim.ids) == len(group):
        claim.renewed_at = renewed_at  # the group was all we had: its lease is our lease
    for message in group:
        message.attempts += 1
    return group


def _heartbeat(claim: _Claim, keep_alive: Callable[[], bool] | None) -> None:
    """Renew the claim, and through ``keep_alive`` the lease of the job that runs us."""
    _renew(claim)
    if keep_alive is not None and not keep_alive():
        claim.alive = False


def _release(claim: _Claim) -> None:
    """Give back the rows we claimed but did not get to: they stay ``sending`` with their
    lease run out, so the next worker treats them as it treats any stranded row."""
    ids = list(claim.ids)
    _reconnecting(
        lambda: OutboxMessage.objects.filter(
            pk__in=ids, claim_token=claim.token, state=OutboxMessage.State.SENDING
        ).update(claimed_until=timezone.now())
    )
    claim.ids.clear()


def outbox_send(
    *,
    now: dt.datetime,
    ids: Sequence[int] | None = None,
    limit: int | None = None,
    keep_alive: Callable[[], bool] | None = None,
) -> SendReport:
    """Send due messages (all due, or only ``ids``); returns what happened.

    ``keep_alive`` is called each time the claim is renewed, so a job can renew its own
    lease there; when it answers False the worker stops after the group in flight and
    gives the rest back.
    """
    claim, claimed = _claim(ids=ids, now=now, limit=limit or settings.OUTBOX_BATCH)
    report = SendReport()
    by_channel: dict[str, list[OutboxMessage]] = {}
    for message in claimed:
        by_channel.setdefault(message.channel, []).append(message)
    for channel, messages in by_channel.items():
        if claim.alive and claim.ids:
            _send_channel(claim, channel, messages, now, report, keep_alive)
    if claim.ids:
        _release(claim)
    return report


def outbox_flush(
    *, now: dt.datetime, keep_alive: Callable[[], bool] | None = None
) -> dict[str, int]:
    """Send batch after batch until nothing is due at ``now`` (or ``keep_alive`` says the
    job lost its lease)."""
    totals = {"sent": 0, "retrying": 0, "failed": 0}
    while keep_alive is None or keep_alive():
        report = outbox_send(now=now, keep_alive=keep_alive)
        for key in totals:
            totals[key] += getattr(report, key)
        if report.sent + report.failed + report.retrying == 0:
            break
    return totals


def _send_channel(
    claim: _Claim,
    channel: str,
    messages: list[OutboxMessage],
    now: dt.datetime,
    report: SendReport,
    keep_alive: Callable[[], bool] | None,
) -> None:
    try:
        backend = open_backend(channel)
    except PermanentFailure as exc:
        _record(claim, [(m, FAILED, str(exc)) for m in messages], now, report)
        return
    try:
        stranded = {
            m.pk
            for m in messages
            if m.state == OutboxMessage.State.SENDING and m.send_started_at is not None
        }
        if stranded and not backend.dedupes_by_key:
            uncertain = [(m, FAILED, UNCERTAIN) for m in messages if m.pk in stranded]
            _record(claim, uncertain, now, report)
            messages = [m for m in messages if m.pk not in stranded]
        # A backend that does not say it is thread-safe sends alone; on a channel without
        # dedupe only what is really in flight is marked, so only that can be uncertain.
        workers = settings.OUTBOX_CONCURRENCY if getattr(backend, "concurrent", False) else 1
        size = settings.OUTBOX_GROUP if backend.dedupes_by_key else workers
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, len(messages), size):
                if claim.due_for_renewal():
                    _heartbeat(claim, keep_alive)
                if not claim.alive or not claim.ids:
                    return
                group = [m for m in messages[start : start + size] if m.pk in claim.ids]
                group = _start(claim, group) if group else group
                if group:
                    _record(
                        claim, _send_group(claim, pool, backend, group, keep_alive), now, report
                    )
    finally:
        backend.close()


def _send_group(
    claim: _Claim,
    pool: ThreadPoolExecutor,
    backend: Backend,
    group: list[OutboxMessage],
    keep_alive: Callable[[], bool] | None,
) -> list[tuple[OutboxMessage, str, str]]:
    """Send a group in the pool while this thread keeps the claim's lease alive, however
    long a slow provider takes."""
    futures: list[Future] = [pool.submit(_send_one, claim, backend, m) for m in group]
    waiting = set(futures)
    while waiting:
        _, waiting = wait(waiting, timeout=claim.lease / 3)
        if waiting and claim.due_for_renewal():
            _heartbeat(claim, keep_alive)
    return [future.result() for future in futures]


def _send_one(
    claim: _Claim, backend: Backend, message: OutboxMessage
) -> tuple[OutboxMessage, str, str]:
    if not claim.fresh():  # frozen past our lease: a successor may own it by now
        return message, RELEASE, ""
    try:
        provider_id = backend.send(
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
            key=str(message.idempotency_key),
            meta={"reference": f"intervention-{message.intervention_id}"},
        )
        return message, SENT, provider_id
    except TemporaryFailure as exc:
        if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            return message, FAILED, f"gave up after {message.attempts} attempts: {exc}"
        return message, RETRY, str(exc)
    except PermanentFailure as exc:
        return message, FAILED, str(exc)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=settings.OUTBOX_RETRY_SECONDS * 2 ** (attempts - 1))


def _record(
    claim: _Claim,
    results: list[tuple[OutboxMessage, str, str]],
    now: dt.datetime,
    report: SendReport,
) -> None:
    """Write the outcomes of a group in one transaction (messages, their interventions and
    the audit rows), only for rows still holding our token; retried on a new connection
    if the database drops meanwhile."""
    pks = [message.pk for message, _, _ in results]

    def write() -> tuple[list, list, list]:
        sent, failed, retry, release = [], [], [], []
        with transaction.atomic():
            ours = set(
                OutboxMessage.objects.select_for_update()
                .filter(pk__in=pks, claim_token=claim.token, state=OutboxMessage.State.SENDING)
                .values_list("pk", flat=True)
            )
            for message, outcome, detail in results:
                if message.pk not in ours:
                    continue  # a successor took it over: its outcome is its to record
                message.claimed_until = None
                if outcome == SENT:
                    message.state, message.provider_message_id = OutboxMessage.State.SENT, detail
                    message.sent_at, message.last_error = now, ""
                    sent.append(message)
                elif outcome == RETRY:
                    message.state, message.last_error = OutboxMessage.State.PENDING, detail
                    message.next_attempt_at = now + _backoff(message.attempts)
                    retry.append(message)
                elif outcome == FAILED:
                    message.state, message.last_error = OutboxMessage.State.FAILED, detail
                    failed.append(message)
                else:
                    release.append(message.pk)
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
            OutboxMessage.objects.filter(pk__in=release).update(
                send_started_at=None, claimed_until=timezone.now(), attempts=F("attempts") - 1
            )
            _move(sent, Intervention.State.SENT, SCHEDULE, now, sent_at=now)
            _move(failed, Intervention.State.FAILED, SCHEDULE, now)
        return sent, failed, retry

    sent, failed, retry = _reconnecting(write)
    claim.ids -= set(pks)
    report.sent += len(sent)
    report.failed += len(failed)
    report.retrying += len(retry)
    report.errors.extend(m.last_error for m in failed)
    if retry:
        soonest = min((m.next_attempt_at - now).total_seconds() for m in retry)
        report.retry_in = soonest if report.retry_in is None else min(report.retry_in, soonest)


# The audit action of each state a message's outcome moves its intervention to.
_MOVED = {
    Intervention.State.SENT: Action.SENT,
    Intervention.State.DELIVERED: Action.DELIVERED,
    Intervention.State.FAILED: Action.FAILED,
}


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
    audit_write(
        actor=actor,
        action=_MOVED[state],
        at=now,
        intervention_id=list(before),
        from_state=list(before.values()),
        to_state=state,
        detail=[{"reason": details[pk]} if details.get(pk) else None for pk in before],
    )


RECEIPT_STATES = {"delivered": OutboxMessage.State.DELIVERED, "failed": OutboxMessage.State.FAILED}


class ReceiptRefused(Exception):
    """A receipt that cannot be true: the message it names was never handed to a provider."""


def outbox_receipt(
    *, reference: str, status: str, now: dt.datetime, reason: str = ""
) -> OutboxMessage:
    """A provider's delivery receipt, by our idempotency key or its message id. Receipts
    may arrive twice or out of order; a delivered message stays delivered. A receipt for a
    message never handed to a provider raises :class:`ReceiptRefused` and changes nothing:
    marking it delivered would mean it is never sent."""
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
    unsent = (OutboxMessage.State.PENDING, OutboxMessage.State.SENDING)
    if message.state in unsent and message.send_started_at is None:
        raise ReceiptRefused(RECEIPT_NOT_SENT)
    message.state = RECEIPT_STATES[status]
    if status == "delivered":
        message.delivered_at = now
    else:
        message.last_error = reason or "the provider reported a failed delivery"
    message.save(update_fields=["state", "delivered_at", "last_error"])
    target = Intervention.State.DELIVERED if status == "delivered" else Intervention.State.FAILED
    _move([message], target, PROVIDER, now)


def outbox_announce(ids: list[int]) -> None:
    """Have these messages sent as soon as the caller's transaction commits (the send task
    listens to ``outbox_due``); until then no worker could see them."""
    transaction.on_commit(lambda: outbox_due.send(sender=OutboxMessage, message_ids=ids))


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
            claim_token="",
            send_started_at=None,
            last_error="",
        )
        requeued = Intervention.objects.filter(
            pk__in=[iv for _, iv in failed], state=Intervention.State.FAILED
        )
        moved = list(requeued.values_list("pk", flat=True))
        requeued.update(state=Intervention.State.QUEUED, updated_at=now)
        audit_write(
            actor=actor,
            action=Action.RETRIED,
            at=now,
            intervention_id=moved,
            from_state=Intervention.State.FAILED,
            to_state=Intervention.State.QUEUED,
        )
        if ids:
            outbox_announce(ids)
    return len(ids)
