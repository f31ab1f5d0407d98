"""Pushing case cards to chats. Triggered when the day's to-do lists change or cases
change hands, and every minute by beat for anything a lost trigger left behind; one pusher
at a time, so the rate limits it keeps hold across workers. The most valuable cards go
first: they are claimed by priority, and each turn of Telegram's rate goes to the most
valuable card whose chat can take one.

The pusher holds a short lease (``TELEGRAM_PUSH_LEASE_SECONDS``), renewed with its card
claims every third of it while it pushes, so a backlog of any length keeps its pusher and a
killed pusher's cards are picked up within one lease. The lease token is also the claim
token on its cards: each card is marked in flight only while both still match, right
before it is posted, so a pusher whose lease was taken over posts nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from asgiref.sync import sync_to_async
from celery import shared_task
from django.conf import settings
from django.db import connections
from django.utils import timezone

from bots import actions, selectors
from bots.cards import Message
from bots.limits import pace
from bots.services import (
    PUSH_LEASE,
    card_failed,
    card_sent,
    card_start,
    card_unsent,
    cards_claim,
    cards_queue,
    cards_release,
    cards_renew,
)
from bots.telegram import Card, Clock, LoopClock, Pacer, paced_bot, push, pusher_bot, redraw
from core.locks import Lease, single_instance

BATCH = 100  # small, so the first cards leave soon; the next are claimed while they fly


class _Pusher:
    """The synchronous side of one push run: claims, per-card bookkeeping and renewals,
    all under the run's lease token."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.lost = False
        self.totals = {"sent": 0, "failed": 0}

    def renew(self) -> bool:
        """Renew the lease and the claims on our cards; False once the lease was taken."""
        if not self.lease.renew():
            self.lost = True
            return False
        cards_renew(token=self.lease.token, until=timezone.now() + self.lease.ttl)
        return True

    def next_batch(self) -> list[Card]:
        if not self.renew():
            return []
        now = timezone.now()
        cards_queue(now=now)
        claimed = cards_claim(
            token=self.lease.token, limit=BATCH, now=now, until=now + self.lease.ttl
        )
        cards = selectors.cards_by_id(claimed)
        drawn = actions.alert_messages([c.alert for c in cards])
        return [(c.pk, c.chat_id, drawn[c.alert_id]) for c in cards]

    def start(self, card_id: int) -> bool:
        return card_start(card_id=card_id, token=self.lease.token, now=timezone.now())

    def record(self, card_id: int, result: int | str | None) -> None:
        token = self.lease.token
        if isinstance(result, int):
            card_sent(card_id=card_id, token=token, message_id=result, now=timezone.now())
            self.totals["sent"] += 1
        elif result is None:
            card_unsent(card_id=card_id, token=token)
        else:
            card_failed(card_id=card_id, token=token, error=result)
            self.totals["failed"] += 1


async def _keep_alive(pusher: _Pusher) -> None:
    """Renew in real time, whatever clock paces the cards, since leases are wall-clock."""
    while not pusher.lost:
        await asyncio.sleep(pusher.lease.ttl.total_seconds() / 3)
        await sync_to_async(pusher.renew)()


async def _push_all(pusher: _Pusher, clock: Clock) -> dict[str, int]:
    """Every pending card with one bot connection, claiming more while the first fly
    (cases planned meanwhile are picked up too)."""
    bot = pusher_bot(token=settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_API_BASE_URL)
    async with bot:
        heartbeat = asyncio.create_task(_keep_alive(pusher))
        try:
            await push(
                bot,
                [],
                start=sync_to_async(pusher.start),
                record=sync_to_async(pusher.record),
                pacer=Pacer(clock),
                turn=lambda: pace(rate=settings.TELEGRAM_MESSAGES_PER_SECOND),
                more=sync_to_async(pusher.next_batch),
                stopped=lambda: pusher.lost,
            )
        finally:
            heartbeat.cancel()
            await sync_to_async(cards_release)(token=pusher.lease.token)
            await sync_to_async(connections.close_all)()  # the connection of sync_to_async's thread
    return pusher.totals


def _push_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.TELEGRAM_PUSH_LEASE_SECONDS)


@single_instance(PUSH_LEASE, ttl=_push_lease, busy="pusher")
def push_pending_cards(*, lease: Lease, clock: Clock | None = None) -> dict:
    """Push every pending card under the push lease; ``clock`` paces them (the event
    loop's by default)."""
    return asyncio.run(_push_all(_Pusher(lease), clock or LoopClock()))


@shared_task(acks_late=True)
def push_alert_cards_task() -> dict:
    if not settings.TELEGRAM_BOT_TOKEN:
        return {"skipped": "TELEGRAM_BOT_TOKEN is not set"}
    return push_pending_cards()


def _posted(alert_ids: list[int]) -> list[tuple[int, int, Message]]:
    cards = list(selectors.posted_cards(alert_ids))
    drawn = actions.alert_messages([c.alert for c in cards])
    return [(c.chat_id, c.message_id, drawn[c.alert_id]) for c in cards]


async def _redraw_all(alert_ids: list[int]) -> int:
    cards = await sync_to_async(_posted)(alert_ids)
    if cards:
        bot = paced_bot(token=settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_API_BASE_URL)
        async with bot:
            await redraw(bot, cards)
    return len(cards)


@shared_task(acks_late=True)
def redraw_alert_cards_task(alert_ids: list[int]) -> dict:
    """Draw the posted cards of these alerts again as the alerts stand now: after an
    erasure, without the customer's name and masked contact."""
    if not settings.TELEGRAM_BOT_TOKEN:
        return {"skipped": "TELEGRAM_BOT_TOKEN is not set"}
    return {"redrawn": asyncio.run(_redraw_all(alert_ids))}
