"""Reads of the churn definition, the registry and the scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from ml import stages
from ml.models import ChurnDefinition, CustomerScore, ModelVersion, ScoringRun


class NotReady(Exception):
    """Scoring cannot run yet; the message says what to do first."""


def active_definition() -> ChurnDefinition:
    """The definition in force; the default one is created on first use so a fresh shop
    works without visiting the admin."""
    definition = definition_in_force()
    if definition.pk is None:
        definition.save()
    return definition


def definition_in_force() -> ChurnDefinition:
    """The active definition, or the default one unsaved: for reads that must not write
    (a backtest registers nothing)."""
    return ChurnDefinition.objects.filter(is_active=True).first() or ChurnDefinition()


def champion() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).first()


def usable_champion(definition: ChurnDefinition) -> ModelVersion:
    """The champion, if it learnt the labels the definition now describes."""
    version = champion()
    if version is None:
        raise NotReady("there is no champion model yet: run `manage.py train` first")
    if version.definition_fingerprint != definition.fingerprint():
        raise NotReady(
            f"the churn definition changed after champion #{version.pk} was trained: "
            "run `manage.py train` to retrain on the new labels"
        )
    return version


def latest_run() -> ScoringRun | None:
    done = ScoringRun.objects.filter(status=ScoringRun.Status.DONE)
    return done.order_by("-as_of", "-id").first()


def latest_scores() -> QuerySet[CustomerScore]:
    """Everyone's current score: the rows of the newest finished run."""
    run = latest_run()
    if run is None:
        return CustomerScore.objects.none()
    return CustomerScore.objects.filter(run=run).select_related("customer")


def score_history(customer_id: int) -> QuerySet[CustomerScore]:
    return (
        CustomerScore.objects.filter(customer_id=customer_id, run__status=ScoringRun.Status.DONE)
        .select_related("run")
        .order_by("-run__as_of", "-run_id")
    )


def run_frame(run: ScoringRun) -> pd.DataFrame:
    """Features and scores of every customer the run scored, indexed by customer id:
    the feature columns, ``probability``, ``expected_spend``, ``value_at_risk``, ``tier``
    and ``stage``."""
    if not run.frame:
        raise NotReady(f"scoring run #{run.pk} kept no feature frame: score again with --rescore")
    with run.frame.open("rb") as handle, np.load(handle) as saved:
        frame = pd.DataFrame(
            saved["values"],
            index=pd.Index(saved["customer_id"], name="customer_id"),
            columns=saved["columns"].tolist(),
        )
        frame["tier"] = saved["tier"]
        stage = saved.get("stage")
    if stage is None:  # a run scored before stages existed: staged by today's thresholds
        stage = stages.stages(
            active_definition().stage_thresholds(),
            probability=frame["probability"].to_numpy(float),
            p_alive=frame["bgnbd_p_alive"].to_numpy(float),
            recency_days=frame["recency_days"].to_numpy(float),
        )
    frame["stage"] = stage
    return frame


def run_picks(run: ScoringRun) -> pd.DataFrame:
    """Product ids picked for each customer the run scored (``pick_1`` ...), best first,
    ``NO_PICK`` where there was nothing to recommend."""
    with run.frame.open("rb") as handle, np.load(handle) as saved:
        if "picks" not in saved:
            raise NotReady(f"scoring run #{run.pk} kept no product picks: score again")
        picks = saved["picks"]
        return pd.DataFrame(
            picks,
            index=pd.Index(saved["customer_id"], name="customer_id"),
            columns=[f"pick_{i + 1}" for i in range(picks.shape[1])],
        )


def versions_for_display(*, limit: int = 30) -> list[ModelVersion]:
    """The newest versions with their metrics, without the (large) artefacts."""
    return list(ModelVersion.objects.defer("artifact", "reference", "search")[:limit])


def version_for_display(version_id: int | None) -> ModelVersion | None:
    """One version without its artefact; the champion when no id is given."""
    versions = ModelVersion.objects.defer("artifact", "reference", "search")
    if version_id is None:
        return versions.filter(status=ModelVersion.Status.CHAMPION).first()
    return versions.filter(pk=version_id).first()


def drift_history(*, runs: int = 30) -> list[ScoringRun]:
    """The latest finished scoring runs, oldest first, with their drift figures."""
    done = ScoringRun.objects.filter(status=ScoringRun.Status.DONE).select_related("model_version")
    done = done.defer(
        "model_version__artifact", "model_version__reference", "model_version__search"
    )
    return list(done.order_by("-as_of", "-id")[:runs])[::-1]
