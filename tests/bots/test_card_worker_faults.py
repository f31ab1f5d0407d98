"""The card pusher in real Celery workers, in their own processes: a backlog of cards to
one chat, each taking Telegram 10 ms so the backlog outlasts several leases; a second
pusher refused while the first renews its short lease, then the first frozen with SIGSTOP
until the second takes over. Telegram is the local fake Bot API; the pace is switched off
here (the pacing tests use an injected clock)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from bots.models import AlertCard
from bots.services import CARD_UNCERTAIN, cards_queue
from bots.tasks import push_alert_cards_task
from tests.bots.backlog import BACKLOG, backlog_alerts, posted
from tests.factories import NOW
from tests.fakes.bot_api import TOKEN, FakeBotApi
from tests.retention.workers import database_url, wait_for, workers

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SKIPPED = {"skipped": "another pusher holds the lease"}


def test_a_backlog_of_cards_is_posted_once_across_two_pushers_and_a_takeover():
    backlog_alerts()
    with FakeBotApi() as telegram, workers() as start:
        telegram.latency = 0.01
        env = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
            "TELEGRAM_SECONDS_PER_CHAT": "0",
            "TELEGRAM_MESSAGES_PER_SECOND": "100000",
            "TELEGRAM_PUSH_LEASE_SECONDS": "2",
        }
        first = start("pusher-a", **env)
        second = start("pusher-b", **env)
        pushing = push_alert_cards_task.apply_async(queue=first.queue)
        began = wait_for(lambda: telegram.sent() and time.monotonic())
        wait_for(lambda: time.monotonic() - began > 3)  # past its first lease
        assert push_alert_cards_task.apply_async(queue=second.queue).get(timeout=60) == SKIPPED
        first.freeze()

        def taken_over() -> dict | None:
            result = push_alert_cards_task.apply_async(queue=second.queue).get(timeout=120)
            return None if result == SKIPPED else result

        wait_for(taken_over, timeout=120, every=0.5)
        first.thaw()
        pushing.get(timeout=60)
        wait_for(taken_over, timeout=120, every=0.5)  # the next beat tick: what A gave back

    times = posted(telegram)
    cards = dict(AlertCard.objects.values_list("alert__customer__external_id", "state"))
    uncertain = AlertCard.objects.filter(state="failed")
    assert len(cards) == BACKLOG and uncertain.count() <= 1
    assert all(times[who] == 1 for who, state in cards.items() if state == "sent")
    assert all(times[who] <= 1 for who, state in cards.items() if state == "failed")
    assert set(uncertain.values_list("last_error", flat=True)) <= {CARD_UNCERTAIN}


def test_a_pusher_frozen_inside_its_claim_holds_up_no_other_pushers_queueing():
    backlog_alerts()
    assert cards_queue(now=NOW) == BACKLOG
    AlertCard.objects.order_by("pk").first().delete()  # its case still waits for a card
    with psycopg.connect(database_url()) as frozen:  # mid-claim: rows updated, no commit
        frozen.execute("UPDATE bots_alertcard SET claim_token = 'frozen'")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a wait is an error, not a hang
            try:
                assert cards_queue(now=NOW) == 1
            finally:
                cursor.execute("RESET lock_timeout")
        frozen.rollback()
