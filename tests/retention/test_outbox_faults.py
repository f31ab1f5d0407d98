"""The outbox under faults, in this process: a worker dying mid-batch, the database
dropping while outcomes are recorded, a batch outliving its lease while a second worker
flushes, and a worker frozen past its lease. The providers are the local fakes (an SMS
provider, an SMTP relay recording each idempotency key); the database is real."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from retention.models import OutboxMessage
from retention.services.outbox import UNCERTAIN, outbox_send
from tests.factories import NOW
from tests.fakes.mail_relay import RelayBackend, sent_keys
from tests.retention.outbox_faults import expire_leases, key, queued, states

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def relay(settings, tmp_path, monkeypatch):
    """Email goes to the recording relay; yields the file of keys it took."""
    keys = tmp_path / "keys"
    monkeypatch.setenv("TEST_MAIL_KEYS", str(keys))
    monkeypatch.setenv("TEST_MAIL_DELAY", "0")
    settings.EMAIL_BACKEND = "tests.fakes.mail_relay.RelayBackend"
    yield keys
    RelayBackend.after_send = None


@pytest.mark.smoke
def test_a_worker_dying_mid_batch_leaves_only_the_email_in_flight_uncertain(relay):
    messages = queued(10, "email")

    def die_during_the_fourth(count: int) -> None:
        if count == 4:
            raise SystemExit("worker killed")

    RelayBackend.after_send = die_during_the_fourth
    with pytest.raises(SystemExit):
        outbox_send(now=NOW)
    RelayBackend.after_send = None
    expire_leases()
    outbox_send(now=NOW)

    assert Counter(sent_keys(relay)) == {key(m): 1 for m in messages}
    assert (
        states(messages) == [("sent", "sent")] * 3 + [("failed", "failed")] + [("sent", "sent")] * 6
    )
    assert OutboxMessage.objects.get(pk=messages[3].pk).last_error == UNCERTAIN


def test_a_database_connection_dropped_while_recording_is_reconnected_not_failed(relay):
    messages = queued(10, "email")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (worker_pid,) = cursor.fetchone()
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("dbname", "user", "host", "port") if params.get(k)}

    def drop_the_workers_connection(count: int) -> None:
        if count == 3:
            with psycopg.connect(**dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [worker_pid])

    RelayBackend.after_send = drop_the_workers_connection
    report = outbox_send(now=NOW)

    assert report.sent == 10 and report.failed == 0
    assert Counter(sent_keys(relay)) == {key(m): 1 for m in messages}
    assert states(messages) == [("sent", "sent")] * 10


def flush_meanwhile(stop: threading.Event) -> threading.Thread:
    """A second worker flushing every 0.1 s, as beat and another worker would."""

    def flush() -> None:
        try:
            while not stop.is_set():
                outbox_send(now=timezone.now())
                time.sleep(0.1)
        finally:
            connection.close()

    second = threading.Thread(target=flush)
    second.start()
    return second


def test_an_sms_batch_outliving_its_lease_is_not_sent_again_by_a_second_worker(
    sms_provider, settings
):
    settings.OUTBOX_LEASE_SECONDS = 1
    settings.OUTBOX_CONCURRENCY = 2
    sms_provider.delay = 0.3
    messages = queued(12, "sms")  # 1.8 s of sending on a 1 s lease
    stop = threading.Event()
    second = None

    def start_the_second_worker_once_claimed(count: int) -> None:
        nonlocal second
        if second is None:
            second = flush_meanwhile(stop)

    original = sms_provider.answer

    def answer(path, headers, body):
        start_the_second_worker_once_claimed(0)
        return original(path, headers, body)

    sms_provider.answer = answer
    try:
        report = outbox_send(now=timezone.now())
    finally:
        stop.set()
        if second is not None:
            second.join()

    assert report.sent == 12
    assert sms_provider.requests == {key(m): 1 for m in messages}
    assert states(messages) == [("sent", "sent")] * 12


def test_an_email_batch_outliving_its_lease_ends_sent_in_both_message_and_offer(
    relay, settings, monkeypatch
):
    settings.OUTBOX_LEASE_SECONDS = 1
    monkeypatch.setenv("TEST_MAIL_DELAY", "0.3")
    messages = queued(8, "email")  # 2.4 s of sending on a 1 s lease
    stop = threading.Event()
    second = []
    RelayBackend.after_send = lambda count: second or second.append(flush_meanwhile(stop))
    try:
        outbox_send(now=timezone.now())
    finally:
        stop.set()
        for thread in second:
            thread.join()

    assert Counter(sent_keys(relay)) == {key(m): 1 for m in messages}
    assert states(messages) == [("sent", "sent")] * 8


@pytest.mark.smoke
def test_a_worker_frozen_past_its_lease_neither_sends_nor_overwrites_after_a_takeover(relay):
    messages = queued(6, "email")

    def take_over() -> None:
        try:
            expire_leases()
            outbox_send(now=NOW)
        finally:
            connection.close()

    def frozen_while_a_successor_takes_over(count: int) -> None:
        if count == 2:
            successor = threading.Thread(target=take_over)
            successor.start()
            successor.join()

    RelayBackend.after_send = frozen_while_a_successor_takes_over
    outbox_send(now=NOW)

    assert Counter(sent_keys(relay)) == {key(m): 1 for m in messages}
    assert states(messages) == [("sent", "sent"), ("failed", "failed")] + [("sent", "sent")] * 4
