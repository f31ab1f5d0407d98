"""What the outbox fault tests share: queued offers with their messages, and the states
and keys they are judged by."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from retention.models import OutboxMessage
from tests.factories import NOW, campaign, customer, outbox_sms


def queued(count: int, channel: str) -> list[OutboxMessage]:
    offers = campaign(channels=[channel])
    return [
        outbox_sms(
            offers,
            customer(f"c{number}"),
            intervention_state="queued",
            at=NOW,
            channel=channel,
            recipient=f"c{number}@example.com" if channel == "email" else f"+49151{number:07d}",
        )
        for number in range(count)
    ]


def expire_leases() -> None:
    """What the passing of ``OUTBOX_LEASE_SECONDS`` does to the claims of a dead worker."""
    OutboxMessage.objects.filter(state="sending").update(
        claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )


def key(message: OutboxMessage) -> str:
    return str(message.idempotency_key)


def states(messages: list[OutboxMessage]) -> list[tuple[str, str]]:
    """Each message's state beside its intervention's, in the order given."""
    by_pk = {m.pk: m for m in OutboxMessage.objects.select_related("intervention")}
    return [(by_pk[m.pk].state, by_pk[m.pk].intervention.state) for m in messages]
