"""Pushing alert cards to chats. Triggered when alerts appear or change hands, and every
minute by beat for anything a lost trigger left behind; one pusher at a time, so the
rate limits it keeps hold across workers."""

from __future__ import annotations

import asyncio
import datetime as dt

from asgiref.sync import sync_to_async
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from bots import actions, selectors
from bots.cards import Message
from bots.services import card_failed, card_sent, cards_queue
from bots.telegram import paced_bot, push, redraw
from retention.locks import job_lock

BATCH = 300


def _next_batch() -> list[tuple[int, int, Message]]:
    cards_queue(now=timezone.now())
    return [
        (c.pk, c.chat_id, actions.alert_message(c.alert)) for c in selectors.pending_cards(BATCH)
    ]


def _record(results: dict[int, int | str]) -> tuple[int, int]:
    sent = failed = 0
    for card_id, result in results.items():
        if isinstance(result, int):
            card_sent(card_id=card_id, message_id=result, now=timezone.now())
            sent += 1
        else:
            card_failed(card_id=card_id, error=result)
            failed += 1
    return sent, failed


async def _push_all() -> dict[str, int]:
    """Batch after batch with one bot connection, until no card is pending (alerts stored
    meanwhile are picked up by the next batch)."""
    totals = {"sent": 0, "failed": 0}
    bot = paced_bot(token=settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_API_BASE_URL)
    async with bot:
        while batch := await sync_to_async(_next_batch)():
            results = await push(bot, batch)
            sent, failed = await sync_to_async(_record)(results)
            totals["sent"] += sent
            totals["failed"] += failed
            if len(results) < len(batch):  # Telegram unreachable: the rest waits
                break
    return totals


def push_pending_cards() -> dict[str, int]:
    return asyncio.run(_push_all())


@shared_task(acks_late=True)
def push_alert_cards_task() -> dict:
    if not settings.TELEGRAM_BOT_TOKEN:
        return {"skipped": "TELEGRAM_BOT_TOKEN is not set"}
    with job_lock("bots.push", ttl=dt.timedelta(minutes=15)) as acquired:
        if not acquired:
            return {"skipped": "another pusher holds the lease"}
        return push_pending_cards()


def _posted(alert_ids: list[int]) -> list[tuple[int, int, Message]]:
    cards = selectors.posted_cards(alert_ids)
    return [(c.chat_id, c.message_id, actions.alert_message(c.alert)) for c in cards]


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
