import inspect
from datetime import timedelta

import pytest
from django.utils import timezone

from core.locks import Lease, job_lock, lock_acquire, lock_release, single_instance
from core.models import JobLock

HOUR = timedelta(hours=1)


@pytest.mark.smoke
def test_a_second_run_is_refused_while_the_first_holds_the_lease(db):
    with job_lock("nightly", ttl=HOUR) as first, job_lock("nightly", ttl=HOUR) as second:
        assert first and not second
    with job_lock("nightly", ttl=HOUR) as third:
        assert third


def test_different_jobs_do_not_block_each_other(db):
    with job_lock("score", ttl=HOUR) as a, job_lock("train", ttl=HOUR) as b:
        assert a and b


def test_an_expired_lease_of_a_dead_worker_is_taken_over(db):
    stale = lock_acquire(name="score", ttl=HOUR)
    JobLock.objects.filter(name="score").update(expires_at=timezone.now() - timedelta(seconds=1))
    fresh = lock_acquire(name="score", ttl=HOUR)
    assert fresh and fresh != stale
    # The dead worker waking up must not release the new holder's lease.
    lock_release(name="score", token=stale)
    assert lock_acquire(name="score", ttl=HOUR) is None


def test_the_lease_is_released_when_the_job_fails(db):
    with pytest.raises(RuntimeError), job_lock("score", ttl=HOUR):
        raise RuntimeError("boom")
    assert not JobLock.objects.exists()


def test_a_renewed_lease_outlives_its_first_expiry(db):
    with job_lock("flush", ttl=timedelta(seconds=30)) as lease:
        JobLock.objects.filter(name="flush").update(
            expires_at=timezone.now() + timedelta(seconds=1)
        )
        assert lease.renew()
        assert JobLock.objects.get(name="flush").expires_at > timezone.now() + timedelta(seconds=20)
        assert lock_acquire(name="flush", ttl=HOUR) is None


def test_a_lease_taken_over_cannot_be_renewed_by_its_old_holder(db):
    with job_lock("flush", ttl=HOUR) as lease:
        JobLock.objects.filter(name="flush").update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        successor = lock_acquire(name="flush", ttl=HOUR)
        assert not lease.renew()
        assert JobLock.objects.get(name="flush").token == successor


def test_a_single_instance_job_is_skipped_while_another_run_holds_its_lease(db):
    ran = []

    @single_instance("score", ttl=HOUR, busy="scoring run")
    def score(as_of: str | None = None) -> dict:
        ran.append(as_of)
        return {"scored": as_of}

    token = lock_acquire(name="score", ttl=HOUR)
    assert score("2026-06-30") == {"skipped": "another scoring run holds the lease"}
    lock_release(name="score", token=token)
    assert score("2026-06-30") == {"scored": "2026-06-30"}
    assert ran == ["2026-06-30"] and not JobLock.objects.exists()


def test_a_single_instance_job_that_renews_gets_its_lease_and_callers_never_pass_it(db):
    @single_instance("flush", ttl=lambda: timedelta(seconds=30), busy="flush")
    def flush(*, lease: Lease) -> dict:
        assert JobLock.objects.get(name="flush").token == lease.token
        return {"renewed": lease.renew(), "ttl": lease.ttl}

    assert flush() == {"renewed": True, "ttl": timedelta(seconds=30)}
    assert "lease" not in inspect.signature(flush).parameters
    with pytest.raises(TypeError):
        flush(lease=None)
