"""Leases that keep a scheduled job from running twice at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from retention.models import JobLock


def lock_acquire(*, name: str, ttl: timedelta) -> str | None:
    """Take the lease ``name``; returns its token, or None while someone else holds it.

    Expiry is wall-clock time on purpose: a lease measures how long a worker may run,
    not the business day the job works on.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        taken_over = JobLock.objects.filter(name=name, expires_at__lte=now).update(
            token=token, expires_at=now + ttl
        )
        if taken_over:
            return token
        try:
            with transaction.atomic():
                JobLock.objects.create(name=name, token=token, expires_at=now + ttl)
        except IntegrityError:
            return None
    return token


def lock_release(*, name: str, token: str) -> None:
    """Release only our own lease: one that expired and was taken over stays with its new holder."""
    JobLock.objects.filter(name=name, token=token).delete()


@contextmanager
def job_lock(name: str, *, ttl: timedelta) -> Iterator[bool]:
    """``with job_lock("score", ttl=...) as acquired:`` runs the body either way; a job
    checks ``acquired`` and skips when another run holds the lease."""
    token = lock_acquire(name=name, ttl=ttl)
    try:
        yield token is not None
    finally:
        if token is not None:
            lock_release(name=name, token=token)
