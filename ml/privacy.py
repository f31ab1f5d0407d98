"""Scores and scoring-run files in a customer's export and erasure (registered with
``customers.privacy`` by ``MlConfig.ready``)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction

from customers.models import Customer
from customers.privacy import Erasure
from ml.models import CustomerScore, ScoringRun
from ml.selectors import run_features

# The arrays of a run file that hold one row per scored customer (see attach_frame;
# files written before the scores lived only in CustomerScore also hold "tier" and "stage").
PER_CUSTOMER = ("customer_id", "values", "tier", "stage", "picks")
SCORE_FIELDS = [field.attname for field in CustomerScore._meta.concrete_fields]


def _runs_with_frames():
    return ScoringRun.objects.exclude(frame="").order_by("as_of", "id")


def scores_export(customer: Customer) -> dict[str, Any]:
    """Every stored score with its run, and the customer's row of every run file: the
    features the rules and offers read beside the scores."""
    scores = CustomerScore.objects.filter(customer=customer).order_by("run__as_of", "run_id")
    features = []
    for run in _runs_with_frames():
        frame = run_features(run)
        if customer.pk in frame.index:
            row = frame.loc[customer.pk]
            features.append(
                {
                    "run_id": run.pk,
                    "as_of": run.as_of,
                    "values": {name: float(value) for name, value in row.items()},
                }
            )
    return {
        "scores": list(scores.values(*SCORE_FIELDS, "run__as_of", "run__model_version_id")),
        "run_features": features,
    }


def _without_customer(run: ScoringRun, customer_id: int) -> bytes | None:
    """The run file's content minus one customer's rows, or None if it has none."""
    with run.frame.open("rb") as handle, np.load(handle) as saved:
        arrays = {name: saved[name] for name in saved.files}
    keep = arrays["customer_id"] != customer_id
    if keep.all():
        return None
    for name in PER_CUSTOMER:
        if name in arrays:
            arrays[name] = arrays[name][keep]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def scores_erase(erasure: Erasure) -> dict[str, int]:
    """Delete the customer's scores and drop their row from every run file. A rewritten
    file gets a new name and the old one is deleted after commit, so a rolled-back
    erasure leaves every run pointing at an intact file."""
    customer_id = erasure.customer.pk
    scores, _ = CustomerScore.objects.filter(customer_id=customer_id).delete()
    files = 0
    for run in _runs_with_frames():
        content = _without_customer(run, customer_id)
        if content is None:
            continue
        old = run.frame.name
        storage = run.frame.storage
        run.frame.save(f"run-{run.pk}.npz", ContentFile(content), save=False)
        ScoringRun.objects.filter(pk=run.pk).update(frame=run.frame.name)
        transaction.on_commit(lambda old=old, storage=storage: storage.delete(old))
        files += 1
    return {"scores": scores, "run_files": files}
