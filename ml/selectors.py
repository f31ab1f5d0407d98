"""Reads of the churn definition, the registry and the scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from ml.models import TIER_ORDER, ChurnDefinition, CustomerScore, ModelVersion, ScoringRun
from ml.partitions import scores_table
from retention.sql import NumbersQuery, read_numbers


class NotReady(Exception):
    """Scoring cannot run yet; the message says what to do first."""


def active_definition() -> ChurnDefinition:
    """The definition in force; the default one is created on first use so a fresh shop
    works without visiting the admin."""
    definition = ChurnDefinition.objects.filter(is_active=True).first()
    return definition or ChurnDefinition.objects.create()


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
    the feature columns, ``probability``, ``expected_spend``, ``value_at_risk`` and ``tier``.

    The one loader of a run for rules, proposals and previews: the scores are the stored
    ``CustomerScore`` rows (:func:`run_scores`), the very values alerts copy, so a rule,
    a tier and an alert never disagree about a customer at a threshold."""
    scores = run_scores(run)
    frame = run_features(run)
    if not frame.index.equals(scores.index):
        frame = frame.reindex(scores.index)
    for name in scores.columns:
        frame[name] = scores[name].array
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


def run_scores(run: ScoringRun) -> pd.DataFrame:
    """The run's stored scores, indexed by customer id: ``probability``,
    ``expected_spend`` and ``value_at_risk`` as stored (float64) and ``tier`` (categorical).

    Read as numbers: the tier travels as its rank, and on PostgreSQL the run's partition
    streams as binary COPY in ranges of blocks (outside a transaction)."""
    table = scores_table(run.pk)
    query = NumbersQuery(
        sql=(
            "SELECT customer_id, probability, expected_spend, value_at_risk,"
            f" CAST(CASE tier {_TIER_CODE} ELSE -1 END AS SMALLINT) AS tier"
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
