"""Reads of the churn definition, the registry and the scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from core.sql import NumbersQuery, read_numbers
from ml import stages
from ml.models import TIER_ORDER, ChurnDefinition, CustomerScore, ModelVersion, ScoringRun
from ml.partitions import scores_table


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
    and ``stage``.

    The one loader of a run for rules, proposals and previews: the scores are the stored
    ``CustomerScore`` rows (:func:`run_scores`), the very values alerts copy, so a rule,
    a tier and an alert never disagree about a customer at a threshold."""
    scores = run_scores(run)
    frame = run_features(run)
    if not frame.index.equals(scores.index):
        frame = frame.reindex(scores.index)
    for name in scores.columns:
        frame[name] = scores[name].array
    unstaged = frame["stage"].isna().to_numpy()
    if unstaged.any():  # scored before stages existed: staged by today's thresholds
        stage = frame["stage"].astype(object).to_numpy()
        stage[unstaged] = stages.stages(
            active_definition().stage_thresholds(),
            probability=frame["probability"].to_numpy(float)[unstaged],
            p_alive=frame["bgnbd_p_alive"].to_numpy(float)[unstaged],
            recency_days=frame["recency_days"].to_numpy(float)[unstaged],
        )
        frame["stage"] = stage
    return frame


def run_features(run: ScoringRun) -> pd.DataFrame:
    """The features of every customer the run scored (float32, as kept in the run's file),
    indexed by customer id."""
    if not run.frame:
        raise NotReady(f"scoring run #{run.pk} kept no feature frame: score again with --rescore")
    with run.frame.open("rb") as handle, np.load(handle) as saved:
        return pd.DataFrame(
            saved["values"],
            index=pd.Index(saved["customer_id"], name="customer_id"),
            columns=saved["columns"].tolist(),
        )


_TIER_CODE = " ".join(f"WHEN '{tier}' THEN {code}" for code, tier in enumerate(TIER_ORDER))
_STAGE_CODE = " ".join(f"WHEN '{stage}' THEN {code}" for code, stage in enumerate(stages.ORDER))


def run_scores(run: ScoringRun) -> pd.DataFrame:
    """The run's stored scores, indexed by customer id: ``probability``,
    ``expected_spend`` and ``value_at_risk`` as stored (float64), ``tier`` and ``stage``
    (categorical; the stage is missing for runs scored before stages existed).

    Read as numbers: tier and stage travel as their rank, and on PostgreSQL the run's
    partition streams as binary COPY in ranges of blocks (outside a transaction)."""
    table = scores_table(run.pk)
    query = NumbersQuery(
        sql=(
            "SELECT customer_id, probability, expected_spend, value_at_risk,"
            f" CAST(CASE tier {_TIER_CODE} ELSE -1 END AS SMALLINT) AS tier,"
            f" CAST(CASE stage {_STAGE_CODE} ELSE -1 END AS SMALLINT) AS stage"
            f" FROM {CustomerScore._meta.db_table} WHERE run_id = %s"
            + (" AND {blocks}" if table else "")
        ),
        params=[run.pk],
        columns={
            "customer_id": "int8",
            "probability": "float8",
            "expected_spend": "float8",
            "value_at_risk": "float8",
            "tier": "int2",
            "stage": "int2",
        },
        table=table,
    )
    [columns] = read_numbers(query)
    return pd.DataFrame(
        {
            "probability": columns["probability"],
            "expected_spend": columns["expected_spend"],
            "value_at_risk": columns["value_at_risk"],
            "tier": pd.Categorical.from_codes(columns["tier"], categories=TIER_ORDER),
            "stage": pd.Categorical.from_codes(columns["stage"], categories=stages.ORDER),
        },
        index=pd.Index(columns["customer_id"], name="customer_id"),
    )


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
