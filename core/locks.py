"""Leases that keep a scheduled job from running twice at once.

A lease is short and renewed by its holder while the job works, so it dies with the
holder: a killed worker blocks the job for at most one lease, not for the job's length.
Jobs take theirs with :func:`single_instance`.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import JobLock


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


def lock_renew(*, name: str, token: str, ttl: timedelta) -> bool:
    """Extend our lease by ``ttl`` from now; False when it expired and was taken over (or
    released), and the caller must stop working as its holder."""
    return bool(
        JobLock.objects.filter(name=name, token=token).update(expires_at=timezone.now() + ttl)
    )


def lock_release(*, name: str, token: str) -> None:
    """Release only our own lease: one that expired and was taken over stays with its new holder."""
    JobLock.objects.filter(name=name, token=token).delete()


@dataclass(frozen=True)
class Lease:
    """A held job lease; the job calls :meth:`renew` as it makes progress."""

    name: str
    token: str
    ttl: timedelta

    def renew(self) -> bool:
        return lock_renew(name=self.name, token=self.token, ttl=self.ttl)


@contextmanager
def job_lock(name: str, *, ttl: timedelta) -> Iterator[Lease | None]:
    """``with job_lock("score", ttl=...) as lease:`` runs the body either way; a job
    checks ``lease`` (None when another run holds it) and skips, or renews it as it works."""
    token = lock_acquire(name=name, ttl=ttl)
    try:
        yield Lease(name=name, token=token, ttl=ttl) if token is not None else None
    finally:
        if token is not None:
            lock_release(name=name, token=token)


def single_instance(
    name: str, *, ttl: timedelta | Callable[[], timedelta], busy: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated job only while it holds the lease ``name``; while another run
    holds it, return ``{"skipped": "another <busy> holds the lease"}`` instead.

    ``ttl`` is a duration, or a function giving one when the job starts (for a setting
    that may change at run time). A job that renews its lease as it works declares a
    keyword-only ``lease`` parameter, which the decorator fills; callers may not pass it,
    and the decorated job's signature leaves it out (Celery checks task arguments
    against that signature).
    """

    def decorate(job: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(job)
        takes_lease = "lease" in signature.parameters
        public = signature.replace(
            parameters=[p for n, p in signature.parameters.items() if n != "lease"]
        )

        @functools.wraps(job)
        def run(*args: Any, **kwargs: Any) -> Any:
            public.bind(*args, **kwargs)  # a wrong call fails before the lease is taken
            with job_lock(name, ttl=ttl() if callable(ttl) else ttl) as lease:
                if lease is None:
                    return {"skipped": f"another {busy} holds the lease"}
                if takes_lease:
                    kwargs["lease"] = lease
                return job(*args, **kwargs)

        run.__signature__ = public
        return run

    return decorate
