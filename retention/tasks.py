"""Scheduled and queued workflow jobs. Thin: take the lease, pick the moment, call a service.

Every task is safe to run twice: the services skip what is already done, and the leases
keep two copies of a scheduled job from overlapping.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.locks import Lease, single_instance
from core.time import business_day, day_of, moment
from retention.services.alerts import alerts_escalate
from retention.services.learning import uplift_learn
from retention.services.outbox import outbox_flush, outbox_send
from retention.services.outcomes import campaigns_evaluate, interventions_settle
from retention.services.pipeline import nightly_pipeline


@shared_task(acks_late=True)
@single_instance("retention.nightly", ttl=dt.timedelta(hours=6), busy="nightly pipeline")
def nightly_pipeline_task(as_of: str | None = None) -> dict:
    day = day_of(as_of)
    return nightly_pipeline(as_of=business_day(day), now=moment(day))


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_outbox_task(self, message_ids: list[int]) -> dict:
    """Send these messages now. Messages a provider could not take are rescheduled in the
    database with exponential backoff, and this task retries when the earliest is due;
    the outbox flush picks up anything a lost task left behind."""
    report = outbox_send(now=timezone.now(), ids=message_ids)
    if report.retry_in is not None:
        raise self.retry(countdown=report.retry_in)
    return {"sent": report.sent, "failed": report.failed}


def _outbox_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


@shared_task(acks_late=True)
@single_instance("retention.outbox", ttl=_outbox_lease, busy="flush")
def flush_outbox_task(*, lease: Lease) -> dict:
    """The lease is short and renewed as the flush sends, so a killed flush holds up the
    next one for at most ``OUTBOX_LEASE_SECONDS``."""
    return outbox_flush(now=timezone.now(), keep_alive=lease.renew)


@shared_task(acks_late=True)
def escalate_alerts_task() -> dict:
    return {"escalated": len(alerts_escalate(now=timezone.now()))}


@shared_task(acks_late=True)
@single_instance("retention.outcomes", ttl=dt.timedelta(hours=2), busy="evaluation")
def evaluate_campaigns_task(as_of: str | None = None) -> dict:
    day = day_of(as_of)
    settled = interventions_settle(now=moment(day))
    outcomes = campaigns_evaluate(as_of=business_day(day))
    learned = uplift_learn(as_of=business_day(day), now=moment(day))
    return {
        **settled,
        "campaigns": {o.campaign.name: o.verdict for o in outcomes},
        "uplift_model": learned.pk,
    }
