"""Backtest: how each algorithm would have done had it been trained on an earlier day.

Reads only; nothing is registered. Training stops at ``as_of - horizon`` (its labels end
on ``as_of``), every model scores the customers at ``as_of``, and the labels from
``(as_of, as_of + horizon]`` judge them. The would-be champion is chosen the way it
could have been chosen on ``as_of``: on the validation folds (the simplest model within one
standard error of the best mean AUC), never by the labels being judged.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence

import numpy as np

from ml.features import FEATURE_NAMES
from ml.metrics import evaluate
from ml.selectors import active_definition
from ml.services import cutoff_data, data_ends, stack, training_cutoffs, with_baseline
from ml.training import ALGORITHMS, choose, train_zoo


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
    if ends is None or ends < as_of + dt.timedelta(days=horizon_days - 1):
        raise ValueError(
            f"the data ends on {ends}, before the evaluation window "
            f"({as_of}, {as_of + dt.timedelta(days=horizon_days)}] is complete"
        )
    definition = copy.copy(active_definition())
    definition.horizon_days = horizon_days  # a what-if horizon; never saved
    last = as_of - dt.timedelta(days=horizon_days)
    cutoffs = training_cutoffs(last=last, count=training_cutoff_count, step_days=step_days)
    train = stack([cutoff_data(as_of=c, definition=definition) for c in cutoffs])
    judged = cutoff_data(as_of=as_of, definition=definition)
    if len(np.unique(judged.labels)) < 2:
        raise ValueError(
            f"every customer scored at {as_of} has the same outcome within {horizon_days} "
            "days, so no model can be judged; pick an earlier --as-of or another --horizon-days"
        )
    if len(np.unique(train.y)) < 2:
        raise ValueError(
            f"the training cut-offs up to {last} hold only one outcome; pick a later --as-of "
            "or a shorter --horizon-days"
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
                **metrics,
                "training_rows": len(train.y),
                "evaluated_rows": len(judged.labels),
                "fit_seconds": round(model.fit_seconds, 2),
            }
        )
    return sorted(results, key=lambda r: -r["auc"])
