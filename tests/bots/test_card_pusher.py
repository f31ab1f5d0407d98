"""The card pusher on a backlog: 2,000 cards to one chat, paced by an injected clock so
Telegram's one-a-second takes no real time, against the local fake Bot API, with a second
pusher starting meanwhile and the pusher's lease expiring under it."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading

import pytest
from django.db import connection
from django.utils import timezone

from bots.models import AlertCard
from bots.services import PUSH_LEASE
from bots.tasks import push_pending_cards
from core.models import JobLock
from tests.bots.backlog import BACKLOG, backlog_alerts, posted
from tests.bots.fake_bot_api import TOKEN, FakeBotApi

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class FakeClock:
    """Virtual time for the pacer: a sleep advances it at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


@pytest.fixture
def telegram(settings):
    with FakeBotApi() as api:
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.TELEGRAM_API_BASE_URL = api.base_url
        yield api


@pytest.fixture
def backlog(transactional_db) -> int:
    return backlog_alerts()


def in_a_thread(push, results: list) -> threading.Thread:
    def run() -> None:
        try:
            results.append(push())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_pusher_whose_lease_is_taken_over_mid_backlog_posts_no_card_twice(
    telegram, backlog, settings
):
    settings.TELEGRAM_SECONDS_PER_CHAT = 0
    settings.TELEGRAM_MESSAGES_PER_SECOND = 100_000
    second: list[threading.Thread] = []
    results: list[dict] = []

    def take_over_at_the_500th(count: int) -> None:
        if count == 500 and not second:
            # What the passing of the lease does, as if the first pusher were frozen.
            JobLock.objects.filter(name=PUSH_LEASE).update(
                expires_at=timezone.now() - dt.timedelta(seconds=1)
            )
            connection.close()
            second.append(in_a_thread(push_pending_cards, results))

    telegram.on_send = take_over_at_the_500th
    push_pending_cards()
    second[0].join()
    telegram.on_send = None
    push_pending_cards()  # the next beat tick: cards the first pusher gave back

    assert posted(telegram) == {f"b{n:04d}": 1 for n in range(BACKLOG)}
    assert set(AlertCard.objects.values_list("state", flat=True)) == {"sent"}


def test_two_thousand_cards_to_one_chat_go_a_second_apart_once_each_past_many_leases(
    telegram, backlog, settings
):
    settings.TELEGRAM_SECONDS_PER_CHAT = 1.0
    settings.TELEGRAM_PUSH_LEASE_SECONDS = 1  # the backlog takes many leases of real time
    clock = FakeClock()
    at: list[float] = []
    others: list[threading.Thread] = []
    refused: list[dict] = []

    def note_time_and_start_rivals(count: int) -> None:
        at.append(clock.time())
        if count % 400 == 0:
            others.append(in_a_thread(push_pending_cards, refused))

    telegram.on_send = note_time_and_start_rivals
    assert push_pending_cards(clock=clock) == {"sent": BACKLOG, "failed": 0}
    for thread in others:
        thread.join()

    assert posted(telegram) == {f"b{n:04d}": 1 for n in range(BACKLOG)}
    assert min(b - a for a, b in itertools.pairwise(at)) >= 1.0
    assert clock.time() >= BACKLOG - 1
    assert refused == [{"skipped": "another pusher holds the lease"}] * (BACKLOG // 400)
