"""The model zoo: candidates, bounded hyper-parameter search, calibration and the choice
among algorithms.

Pure numerics over DataFrames, no Django. The caller (``ml.services``) decides which
cut-offs feed training and which later cut-off is the holdout; this module never sees the
holdout.

Inside the training data, hyper-parameters and the algorithm are chosen on rolling-origin
folds whose validation customers are held out of everything fitted in that fold: cut-offs
a month apart share most of their label windows, so validating on the latest cut-off with
the same customers rewarded learners that recognise customers (the most flexible one won
inner validation and then lost to recency alone on the future). Among algorithms within
one standard error of the best mean, the simplest is chosen.

Probabilities are calibrated with cross-fitted isotonic (or, on small data, sigmoid)
regression, because value at risk multiplies them by money and the champion gate checks
the Brier score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

BASELINE = "recency_baseline"
BASELINE_FEATURE = "recency_days"
N_JOBS = 2
VALIDATION_FOLDS = 3
# Simplicity order for the one-standard-error rule: among near-equals the lower rank wins.
COMPLEXITY = {
    BASELINE: 0,
    "logistic_regression": 1,
    "linear_svm": 1,
    "decision_tree": 2,
    "random_forest": 3,
    "lightgbm": 3,
    "mlp": 3,
}


@dataclass
class Dataset:
    """Stacked feature rows of one or more cut-offs with their labels."""

    X: pd.DataFrame
    y: np.ndarray
    customer_ids: np.ndarray
    cutoffs: np.ndarray  # the cut-off date of each row, as numpy datetime64[D]

    def __post_init__(self) -> None:
        n = len(self.X)
        if not (len(self.y) == len(self.customer_ids) == len(self.cutoffs) == n):
            raise ValueError("features, labels, customer ids and cut-offs differ in length")

    def take(self, mask: np.ndarray) -> Dataset:
        return Dataset(self.X[mask], self.y[mask], self.customer_ids[mask], self.cutoffs[mask])

    def sample(self, rows: int, seed: int) -> Dataset:
        if len(self.y) <= rows:
            return self
        keep = np.zeros(len(self.y), dtype=bool)
        keep[np.random.default_rng(seed).choice(len(self.y), rows, replace=False)] = True
        return self.take(keep)


@dataclass
class Candidate:
    """One algorithm of the zoo: how to build it and the grid it may search."""

    name: str
    build: Callable[[dict[str, Any], int], BaseEstimator]
    grid: list[dict[str, Any]]
    max_rows: int | None = None  # slow learners are fitted on a fixed-seed sample
    calibrate: bool = True


@dataclass
class TrainedModel:
    algorithm: str
    params: dict[str, Any]
    features: list[str]
    estimator: Any
    search: list[dict[str, Any]] = field(default_factory=list)
    # Of the chosen setting over the validation folds: mean, standard deviation, count.
    validation_auc: float = float("nan")
    validation_auc_std: float = float("nan")
    validation_folds: int = 0
    fit_seconds: float = 0.0

    @property
    def validation_auc_se(self) -> float:
        if self.validation_folds < 2:
            return 0.0
        return self.validation_auc_std / np.sqrt(self.validation_folds)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(X[self.features])[:, 1]


def _scaled(model: BaseEstimator) -> Pipeline:
    # Linear learners and the MLP need finite, comparable inputs; the missing indicators
    # keep "never reviewed" distinguishable from an average rating.
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        model,
    )


def _log_recency(X: pd.DataFrame) -> np.ndarray:
    # Module-level (not a lambda) so the fitted pipeline can be pickled into the registry.
    return np.log1p(np.asarray(X[[BASELINE_FEATURE]], dtype=float))


def _recency_only(params: dict[str, Any], seed: int) -> Pipeline:
    return make_pipeline(
        FunctionTransformer(_log_recency), SimpleImputer(strategy="median"), LogisticRegression()
    )


def _lightgbm(params: dict[str, Any], seed: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=params.get("n_estimators", 300),
        learning_rate=params.get("learning_rate", 0.05),
        num_leaves=params["num_leaves"],
        min_child_samples=params.get("min_child_samples", 50),
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=N_JOBS,
        verbose=-1,
    )


ZOO: dict[str, Candidate] = {
    c.name: c
    for c in [
        Candidate(BASELINE, _recency_only, [{}], calibrate=False),
        Candidate(
            "logistic_regression",
            lambda p, s: _scaled(LogisticRegression(C=p["C"], max_iter=500)),
            [{"C": 0.1}, {"C": 1.0}],
        ),
        Candidate(
            "decision_tree",
            lambda p, s: DecisionTreeClassifier(
                max_depth=p["max_depth"], min_samples_leaf=100, random_state=s
            ),
            [{"max_depth": 4}, {"max_depth": 6}, {"max_depth": 8}],
        ),
        Candidate(
            "random_forest",
            lambda p, s: RandomForestClassifier(
                n_estimators=100,
                max_depth=p["max_depth"],
                min_samples_leaf=50,
                max_features="sqrt",
                n_jobs=N_JOBS,
                random_state=s,
            ),
            [{"max_depth": 8}, {"max_depth": 12}],
            max_rows=150_000,
        ),
        Candidate(
            "linear_svm",
            lambda p, s: _scaled(LinearSVC(C=p["C"], dual="auto", random_state=s)),
            [{"C": 0.05}, {"C": 0.5}],
            max_rows=200_000,
        ),
        Candidate(
            "mlp",
            lambda p, s: _scaled(
                MLPClassifier(
                    hidden_layer_sizes=p["hidden"],
                    alpha=1e-3,
                    early_stopping=True,
                    max_iter=200,
                    random_state=s,
                )
            ),
            [{"hidden": (32,)}, {"hidden": (64, 32)}],
            max_rows=100_000,
        ),
        Candidate(
            "lightgbm",
            _lightgbm,
            [{"num_leaves": 15}, {"num_leaves": 31}, {"num_leaves": 63}],
        ),
    ]
}
ALGORITHMS: tuple[str, ...] = tuple(ZOO)


def _scores(model: BaseEstimator, X: pd.DataFrame) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)[:, 1]
    return model.decision_function(X)


def _customer_groups(customer_ids: np.ndarray, folds: int) -> np.ndarray:
    # A multiplicative hash, so groups do not follow the order in which ids were assigned.
    mixed = (customer_ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    return (mixed % np.uint64(folds)).astype(np.int64)


def validation_folds(
    data: Dataset, *, folds: int = VALIDATION_FOLDS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin folds as (fit mask, validation mask) pairs.

    Fold k validates at the k-th latest cut-off on one group of customers and fits on
    every other customer's rows at cut-offs up to that one, so no validated customer's
    history or label window is ever fitted in its fold. With fewer cut-offs than folds
    the earliest cut-off is reused with another customer group.
    """
    cutoffs = np.unique(data.cutoffs)
    groups = _customer_groups(data.customer_ids, folds)
    result = []
    for k in range(folds):
        origin = cutoffs[max(len(cutoffs) - 1 - k, 0)]
        fit = (data.cutoffs <= origin) & (groups != k)
        validate = (data.cutoffs == origin) & (groups == k)
        result.append((fit, validate))
    return result


def train_candidate(
    candidate: Candidate,
    data: Dataset,
    *,
    features: Sequence[str],
    seed: int = 0,
    search_rows: int = 60_000,
    folds: list[tuple[Dataset, Dataset]] | None = None,
) -> TrainedModel:
    """Tune on the validation folds (``fold_parts(data)`` unless given, so a zoo splits
    its data once), then fit the chosen setting on all training rows and calibrate it with
    cross-fitted predictions."""
    started = time.perf_counter()
    features = [BASELINE_FEATURE] if candidate.name == BASELINE else list(features)
    # Even a single setting is validated: the fold AUCs are how algorithms are compared
    # without looking at any later labels.
    rows = min(search_rows, candidate.max_rows or search_rows)
    folds = [(f.sample(rows, seed), v) for f, v in (fold_parts(data) if folds is None else folds)]
    folds = [(f, v) for f, v in folds if len(np.unique(f.y)) == 2 and len(np.unique(v.y)) == 2]
    search: list[dict[str, Any]] = []
    best_params, best_aucs = candidate.grid[0], np.array([])
    for params in candidate.grid if folds else []:
        aucs = np.array(
            [
                roc_auc_score(
                    v.y,
                    _scores(candidate.build(params, seed).fit(f.X[features], f.y), v.X[features]),
                )
                for f, v in folds
            ]
        )
        search.append(
            {
                "params": params,
                "inner_auc": float(aucs.mean()),
                "fold_aucs": [float(a) for a in aucs],
            }
        )
        if not len(best_aucs) or aucs.mean() > best_aucs.mean():
            best_aucs, best_params = aucs, params

    final = data.sample(candidate.max_rows, seed) if candidate.max_rows else data
    estimator = candidate.build(best_params, seed)
    if candidate.calibrate:
        method = "isotonic" if len(final.y) >= 10_000 else "sigmoid"
        estimator = CalibratedClassifierCV(estimator, method=method, cv=3, ensemble=False)
    estimator.fit(final.X[features], final.y)
    return TrainedModel(
        algorithm=candidate.name,
        params=best_params,
        features=features,
        estimator=estimator,
        search=search,
        validation_auc=float(best_aucs.mean()) if len(best_aucs) else float("nan"),
        validation_auc_std=float(best_aucs.std(ddof=1)) if len(best_aucs) > 1 else float("nan"),
        validation_folds=len(best_aucs),
        fit_seconds=time.perf_counter() - started,
    )


def fold_parts(data: Dataset) -> list[tuple[Dataset, Dataset]]:
    """The (fit, validation) rows of each validation fold."""
    return [(data.take(fit), data.take(validate)) for fit, validate in validation_folds(data)]


def train_zoo(
    data: Dataset,
    *,
    features: Sequence[str],
    algorithms: Sequence[str] = ALGORITHMS,
    seed: int = 0,
) -> list[TrainedModel]:
    """Train every requested algorithm; an unknown name is a ValueError, not a skip."""
    unknown = sorted(set(algorithms) - set(ZOO))
    if unknown:
        raise ValueError(f"unknown algorithms: {', '.join(unknown)}; known: {', '.join(ZOO)}")
    if len(np.unique(data.y)) < 2:
        raise ValueError("training labels hold only one class; widen the training window")
    folds = fold_parts(data)
    return [
        train_candidate(ZOO[name], data, features=features, seed=seed, folds=folds)
        for name in algorithms
    ]


def choose(models: Sequence[TrainedModel]) -> TrainedModel:
    """The simplest model whose mean validation AUC is within one standard error of the
    best one's: a flexible learner must beat a simple one by more than the folds' noise."""
    scored = [m for m in models if np.isfinite(m.validation_auc)]
    if not scored:
        raise ValueError(
            "no model could be validated: the training data lacks a fold with both outcomes"
        )
    best = max(scored, key=lambda m: m.validation_auc)
    near = [m for m in scored if m.validation_auc >= best.validation_auc - best.validation_auc_se]
    return min(near, key=lambda m: (COMPLEXITY.get(m.algorithm, 4), -m.validation_auc))
