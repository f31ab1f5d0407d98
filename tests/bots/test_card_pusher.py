"""The card pusher on a backlog of cards to one chat, paced by an injected clock so
Telegram's one-a-second takes no real time, against the local fake Bot API, with a second
pusher starting meanwhile and the pusher's lease expiring under it."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from collections import Counter
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from bots.cards import Message
from bots.models import AlertCard
from bots.services import PUSH_LEASE
from bots.tasks import push_pending_cards
from bots.telegram import Pacer, push
from core.models import JobLock
from retention.models import Alert
from tests.bots.backlog import BACKLOG, backlog_alerts, posted, posted_in_order
from tests.fakes.bot_api import TOKEN, FakeBotApi

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

    def take_over_at_the_150th(count: int) -> None:
        if count == 150 and not second:
            # What the passing of the lease does, as if the first pusher were frozen.
            JobLock.objects.filter(name=PUSH_LEASE).update(
                expires_at=timezone.now() - dt.timedelta(seconds=1)
            )
            connection.close()
            second.append(in_a_thread(push_pending_cards, results))

    telegram.on_send = take_over_at_the_150th
    push_pending_cards()
    second[0].join()
    telegram.on_send = None
    push_pending_cards()  # the next beat tick: cards the first pusher gave back

    assert posted(telegram) == {f"b{n:04d}": 1 for n in range(BACKLOG)}
    assert set(AlertCard.objects.values_list("state", flat=True)) == {"sent"}


def test_a_backlog_to_one_chat_goes_a_second_apart_once_each_past_many_leases(
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
        if count % 100 == 0:
            others.append(in_a_thread(push_pending_cards, refused))

    telegram.on_send = note_time_and_start_rivals
    assert push_pending_cards(clock=clock) == {"sent": BACKLOG, "failed": 0}
    for thread in others:
        thread.join()

    assert posted(telegram) == {f"b{n:04d}": 1 for n in range(BACKLOG)}
    assert min(b - a for a, b in itertools.pairwise(at)) >= 1.0
    assert clock.time() >= BACKLOG - 1
    assert refused == [{"skipped": "another pusher holds the lease"}] * (BACKLOG // 100)


class FakeBot:
    """Takes every card at once and notes the (virtual) time it arrived."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str]] = []

    async def send_message(self, chat_id: int, text: str, reply_markup=None):
        self.sent.append((self.clock.time(), text))
        return SimpleNamespace(message_id=len(self.sent))


class Turns:
    """The overall rate on the virtual clock: ``per_second`` turns in each second. The
    cards already given a turn land before the clock moves on, as they would in the
    real second."""

    def __init__(self, clock: FakeClock, per_second: int) -> None:
        self.clock, self.per_second, self.used = clock, per_second, Counter()

    async def __call__(self) -> None:
        second = int(self.clock.time())
        if self.used[second] >= self.per_second:
            await asyncio.sleep(0)
            second += 1
            await self.clock.sleep(second - self.clock.time())
        self.used[second] += 1


def test_each_turn_goes_to_the_most_valuable_card_whose_chat_can_take_one(settings):
    """Cards come most valuable first; chat A holds the top three. Two turns a second
    and one card a second per chat: A's second card must wait for A, so B's and C's take
    the turns meanwhile, and A's next card takes the first turn A is free again."""
    settings.TELEGRAM_SECONDS_PER_CHAT = 1.0
    clock = FakeClock()
    bot = FakeBot(clock)
    first = [(1, "A", "A9"), (2, "A", "A8"), (3, "A", "A7"), (4, "B", "B6")]
    later = [(5, "C", "C5"), (6, "C", "C1")]
    batches = [later, []]
    recorded: dict[int, object] = {}

    async def start(card_id: int) -> bool:
        return True

    async def record(card_id: int, result) -> None:
        recorded[card_id] = result

    async def more():
        batch = batches.pop(0) if batches else []
        return [(i, chat, Message(text)) for i, chat, text in batch]

    asyncio.run(
        push(
            bot,
            [(i, chat, Message(text)) for i, chat, text in first],
            start=start,
            record=record,
            pacer=Pacer(clock),
            turn=Turns(clock, per_second=2),
            more=more,
        )
    )
    assert bot.sent == [
        (0.0, "A9"),
        (0.0, "B6"),
        (1.0, "A8"),
        (1.0, "C5"),
        (2.0, "A7"),
        (2.0, "C1"),
    ]
    assert recorded == {i: n for n, i in enumerate([1, 4, 2, 5, 3, 6], start=1)}


def test_the_pusher_claims_the_most_valuable_cards_first(telegram, backlog, settings):
    settings.TELEGRAM_SECONDS_PER_CHAT = 0
    settings.TELEGRAM_MESSAGES_PER_SECOND = 100_000
    Alert.objects.update(priority=F("id") % 97)  # the backlog's order, shuffled
    push_pending_cards()
    arrived = list(posted_in_order(telegram))
    priorities = dict(Alert.objects.values_list("customer__external_id", "priority"))
    worth = [priorities[external_id] for external_id in arrived]
    assert len(worth) == BACKLOG and worth == sorted(worth, reverse=True)
