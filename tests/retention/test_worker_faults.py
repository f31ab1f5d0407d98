"""The outbox with real Celery workers in their own processes, killed with ``kill -9`` or
frozen with SIGSTOP mid-batch, sending email through a relay that records every
idempotency key it takes (the SMTP stand-in of ``tests.fakes.mail_relay``)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.utils import timezone

from retention.models import OutboxMessage
from retention.services.outbox import UNCERTAIN
from retention.tasks import flush_outbox_task, send_outbox_task
from tests.fakes.mail_relay import sent_keys
from tests.retention.outbox_faults import key, queued, states
from tests.retention.workers import Worker, wait_for, workers

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# Seconds: OUTBOX_LEASE_SECONDS of the workers. The live worker renews every third of it;
# at 2 s a renewal delayed by a fully loaded machine can let the lease lapse, and the
# second worker then rightly takes messages the test expects it to leave alone.
LEASE = "4"


def flushed(worker: Worker) -> dict:
    """Run a flush on ``worker``, again while a dead or frozen worker's lease lasts."""

    def flush() -> dict | None:
        result = flush_outbox_task.apply_async(queue=worker.queue).get(timeout=60)
        return None if "skipped" in result else result

    return wait_for(flush, every=0.5)


def leases_lapsed() -> bool:
    """True once no message is held by a live lease: the in-flight message's lease was
    renewed as it started, so it runs out after the rest of the dead worker's batch."""
    return not OutboxMessage.objects.filter(
        state=OutboxMessage.State.SENDING, claimed_until__gte=timezone.now()
    ).exists()


def in_flight(relay) -> int:
    """Wait for the relay to take one more message, and return its place in the batch: the
    relay writes the key as it takes a message, then answers after TEST_MAIL_DELAY."""
    before = len(sent_keys(relay))
    return wait_for(lambda: len(sent_keys(relay)) > before and len(sent_keys(relay)))


def expected(count: int, uncertain: int | None) -> list[tuple[str, str]]:
    """Every message sent and its offer too, but the one in flight: failed in both."""
    return [("failed", "failed") if n == uncertain else ("sent", "sent") for n in range(count)]


def test_a_worker_killed_mid_email_batch_leaves_one_uncertain_and_the_rest_sent_once(tmp_path):
    relay = tmp_path / "keys"
    messages = queued(20, "email")
    env = {"TEST_MAIL_KEYS": str(relay), "OUTBOX_LEASE_SECONDS": LEASE}
    with workers() as start:
        first = start("first", TEST_MAIL_DELAY="0.2", TEST_MAIL_HANG_AT="5", **env)
        flush_outbox_task.apply_async(queue=first.queue)
        wait_for(lambda: len(sent_keys(relay)) == 5)  # the fifth is with the relay
        first.kill()
        wait_for(leases_lapsed, every=0.2)  # else a flush may find only the rest of the batch due
        restarted = start("restarted", TEST_MAIL_DELAY="0", **env)
        totals = flushed(restarted)

    assert totals == {"sent": 15, "retrying": 0, "failed": 1}
    assert Counter(sent_keys(relay)) == {key(m): 1 for m in messages}
    assert states(messages) == expected(20, uncertain=4)
    assert OutboxMessage.objects.get(pk=messages[4].pk).last_error == UNCERTAIN


def test_a_batch_outliving_its_lease_and_a_frozen_worker_never_send_an_email_twice(tmp_path):
    relay = tmp_path / "keys"
    messages = queued(16, "email")
    env = {"TEST_MAIL_KEYS": str(relay), "OUTBOX_LEASE_SECONDS": LEASE}
    with workers() as start:
        first = start("first", TEST_MAIL_DELAY="1", **env)
        second = start("second", TEST_MAIL_DELAY="0", **env)
        batch = flush_outbox_task.apply_async(queue=first.queue)
        wait_for(lambda: len(sent_keys(relay)) >= 3)  # 2 s into the batch: its lease renewed
        ids = [m.pk for m in messages]
        assert send_outbox_task.apply_async([ids], queue=second.queue).get(timeout=60) == {
            "sent": 0,
            "failed": 0,
        }
        in_flight(relay)
        first.freeze()  # mid-send, until its lease has run out and the second took over
        place = len(sent_keys(relay))  # nothing more is taken while it is frozen
        totals = flushed(second)
        first.thaw()
        done = batch.get(timeout=60)

    # Frozen during the relay's answer, the last message taken is the one in doubt; frozen
    # in the instant between recording it and taking the next, none is.
    uncertain = place - 1 if totals["failed"] else None
    assert done == {"sent": place - totals["failed"], "retrying": 0, "failed": 0}
    assert totals == {"sent": 16 - place, "retrying": 0, "failed": totals["failed"]}
    assert totals["failed"] <= 1
    assert Counter(sent_keys(relay)) == {key(m): 1 for m in messages}
    assert states(messages) == expected(16, uncertain=uncertain)
