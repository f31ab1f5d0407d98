"""Scheduled ml jobs. Thin: take the lease, pick the day, call the service.

Each is safe to run twice (the services skip a day already done) and never runs twice at
once (a lease in the database, which every worker shares).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from core.locks import single_instance
from core.time import business_day, day_of
from ml.models import ModelVersion
from ml.services import score_customers, train_models


@shared_task(acks_late=True)
@single_instance("ml.score", ttl=dt.timedelta(hours=4), busy="scoring run")
def score_all(as_of: str | None = None) -> dict:
    run = score_customers(as_of=business_day(day_of(as_of)))
    return {"run": run.pk, "as_of": run.as_of.isoformat(), "scored": run.customers_scored}


@shared_task(acks_late=True)
@single_instance("ml.train", ttl=dt.timedelta(hours=6), busy="training run")
def retrain(as_of: str | None = None) -> dict:
    day = business_day(day_of(as_of))
    if ModelVersion.objects.filter(trained_as_of=day).exists():
        return {"skipped": f"models were already trained as of {day}"}
    result = train_models(as_of=day)
    return {"best": result.best.pk, "promoted": result.promoted, "gate": result.gate}
