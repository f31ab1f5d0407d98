"""Backtest: how each algorithm would have done had it been trained on an earlier day.

Reads only; nothing is registered. Training stops at ``as_of - horizon`` (its labels end
on ``as_of``), every model scores the customers at ``as_of``, and the labels from
``(as_of, as_of + horizon]`` judge them. The would-be champion is chosen the way it
could have been chosen on ``as_of``: on the validation folds (``ml.training.choose``: the
simplest model truly tied with the best mean AUC), never by the labels being judged.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence

import numpy as np

from ml.features import FEATURE_NAMES
from ml.metrics import evaluate
from ml.models import ChurnDefinition
from ml.selectors import definition_in_force
from ml.services import cutoff_data, data_ends, stack, training_cutoffs, with_baseline
from ml.training import ALGORITHMS, choose, train_zoo


def what_if_definition(horizon_days: int) -> ChurnDefinition:
    """The definition in force with another horizon, never saved: a backtest asks what
    would have happened and writes nothing."""
    definition = copy.copy(definition_in_force())
    definition.horizon_days = horizon_days
    return definition


def backtest(
    *,
    as_of: dt.date,
    horizon_days: int,
    algorithms: Sequence[str] = ALGORITHMS,
    training_cutoff_count: int = 3,
    step_days: int = 30,
    seed: int = 0,
) -> list[dict]:
    """One result per algorithm, best first: ``auc``, ``pr_auc``, ``brier``, ... and
    ``champion`` (True for the one that would have been picked)."""
    ends = data_ends()
    if ends is None:
        raise ValueError("there are no orders to backtest on; import the shop's orders first")
    window_ends = as_of + dt.timedelta(days=horizon_days)
    if ends < window_ends - dt.timedelta(days=1):
        latest = ends + dt.timedelta(days=1) - dt.timedelta(days=horizon_days)
        raise ValueError(
            f"the data ends on {ends}, before the judged window ({as_of}, {window_ends}] is "
            f"complete; pick --as-of {latest} or earlier, or a shorter --horizon-days"
        )
    definition = what_if_definition(horizon_days)
    last = as_of - dt.timedelta(days=horizon_days)
    cutoffs = training_cutoffs(last=last, count=training_cutoff_count, step_days=step_days)
    train = stack([cutoff_data(as_of=c, definition=definition) for c in cutoffs])
    judged = cutoff_data(as_of=as_of, definition=definition)
    if len(judged.labels) == 0:
        raise ValueError(
            f"no customer has {definition.min_history_days} days of history by {as_of}; "
            "pick a later --as-of"
        )
    if len(np.unique(judged.labels)) < 2:
        raise ValueError(
            f"every customer scored at {as_of} has the same outcome within {horizon_days} "
            "days, so no model can be judged; pick an earlier --as-of or another --horizon-days"
        )
    if len(np.unique(train.y)) < 2:
        raise ValueError(
            f"the training cut-offs up to {last} hold only one outcome (or no customers); "
            "pick a later --as-of or a shorter --horizon-days"
        )
    models = train_zoo(
        train, features=FEATURE_NAMES, algorithms=with_baseline(algorithms), seed=seed
    )
    chosen = choose(models)
    results = []
    for model in models:
        metrics = evaluate(
            judged.labels,
            model.predict_proba(judged.features),
            threshold=definition.high_threshold,
        )
        results.append(
            {
                "model": model.algorithm,
                "champion": model is chosen,
                "params": model.params,
                "validation_auc": model.validation_auc,
                "validation_auc_std": model.validation_auc_std,
                "validation_folds": model.validation_folds,
                "validation_brier": model.validation_brier,
                **metrics,
                "training_rows": len(train.y),
                "evaluated_rows": len(judged.labels),
                "fit_seconds": round(model.fit_seconds, 2),
            }
        )
    return sorted(results, key=lambda r: -r["auc"])
