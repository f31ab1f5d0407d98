"""Scheduled ml jobs. Thin: take the lease, pick the day, call the service.

Each is safe to run twice (the services skip a day already done) and never runs twice at
once (a lease in the database, which every worker shares).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from core.locks import job_lock
from ml.models import ModelVersion
from ml.services import score_customers, train_models


def _day(as_of: str | None) -> dt.date:
    return dt.date.fromisoformat(as_of) if as_of else timezone.localdate()


@shared_task(acks_late=True)
def score_all(as_of: str | None = None) -> dict:
    with job_lock("ml.score", ttl=dt.timedelta(hours=4)) as acquired:
        if not acquired:
            return {"skipped": "another scoring run holds the lease"}
        run = score_customers(as_of=_day(as_of))
        return {"run": run.pk, "as_of": run.as_of.isoformat(), "scored": run.customers_scored}


@shared_task(acks_late=True)
def retrain(as_of: str | None = None) -> dict:
    day = _day(as_of)
    with job_lock("ml.train", ttl=dt.timedelta(hours=6)) as acquired:
        if not acquired:
            return {"skipped": "another training run holds the lease"}
        if ModelVersion.objects.filter(trained_as_of=day).exists():
            return {"skipped": f"models were already trained as of {day}"}
        result = train_models(as_of=day)
        return {"best": result.best.pk, "promoted": result.promoted, "gate": result.gate}
