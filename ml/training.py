"""The model zoo: candidates, bounded hyper-parameter search, calibration and the choice
among algorithms.

Pure numerics over DataFrames, no Django. The caller (``ml.services``) decides which
cut-offs feed training and which later cut-off is the holdout; this module never sees the
holdout.

Inside the training data, hyper-parameters and the algorithm are chosen on rolling-origin
folds whose validation customers are held out of everything fitted in that fold: cut-offs
a month apart share most of their label windows, so validating on the latest cut-off with
the same customers rewarded learners that recognise customers (the most flexible one won
inner validation and then lost to recency alone on the future).

The choice among algorithms prefers the simpler of models that are truly tied: the
simplest model whose mean validation AUC is within one standard error of the best mean
*and* within ``AUC_GIVE`` of it, and whose validation Brier score is within
``BRIER_GIVE`` of that best model's. One standard error alone only says whether three
folds can tell two models apart; on the robustness bench's 5,000-customer shops it chose
logistic regression in 9 of 18 shop-and-cut-off cells where a forest then scored about
0.01 AUC better on the future. That is more than simplicity is worth to a shop: the caps
are the margins by which issue 16 lets a champion trail the best single model (and the
champion gate's tolerances in ``ml.services``), so a simpler model is still preferred
among near-equals, but never at a validated cost beyond them. The validation Brier score
is measured after a logistic calibration cross-fitted on two halves of each validation
fold, because the final models are calibrated on their training rows: what is compared
is how good each model's probabilities can be made, not the scale of raw scores (a
linear SVM's are not probabilities at all).

Probabilities are calibrated with cross-fitted isotonic (or, on small data, sigmoid)
regression, because value at risk multiplies them by money and the champion gate checks
the Brier score; the ensemble's stacker is its own calibration (``ml.ensemble``). That
calibrates them to the season of the training cut-offs' label windows; each model
remembers how long those windows were in average days and moves its probabilities to
the season of the window it scores (``ml.season``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from ml import season
from ml.ensemble import OUT_OF_FOLD_SALT, StackedEnsemble, log_odds
from ml.grouping import customer_groups

BASELINE = "recency_baseline"
BASELINE_FEATURE = "recency_days"
ENSEMBLE = "ensemble"
ENSEMBLE_MEMBERS = ("logistic_regression", "lightgbm")
N_JOBS = 2
VALIDATION_FOLDS = 3
# The validation folds are dealt again, with the customers in other groups, until they
# have validated this many rows (or MAX_DEALS times), and each fold's AUC is the mean
# over the deals. On the robustness bench's 2,000-customer shop one deal validated about
# 600 rows, and dealing the same customers differently (another range of ids) moved
# LightGBM's lead over the forest in mean validation AUC by 0.005 (standard deviation
# over 40 deals), about the lead itself: the forest won 3 of the 40 deals and was then
# 0.007 worse in Brier score on the future. Much of what moves is which customers each
# fold's small model was fitted on: validating every customer at every cut-off within
# one deal still chose the forest on a deal that had; averaging deals chose LightGBM
# on all 14 deals tried at two cut-offs, the 7 among them that had chosen the forest or
# logistic regression or failed the robustness bench's margins included. Shops of
# 20,000 customers and more validate this many rows in one deal, and so train exactly
# as before.
MIN_VALIDATION_ROWS = 5_000
MAX_DEALS = 10
# The most a simpler model may trail the best one in validation and still be preferred.
AUC_GIVE = 0.005
BRIER_GIVE = 0.002
# Simplicity order for the choice rule: among near-equals the lower rank wins.
COMPLEXITY = {
    BASELINE: 0,
    "logistic_regression": 1,
    "linear_svm": 1,
    "decision_tree": 2,
    "random_forest": 3,
    "lightgbm": 3,
    "mlp": 3,
    ENSEMBLE: 4,
}
# Features whose effect on churn has a known direction, all else equal: LightGBM is held
# to it (+1: more of it, more churn). The longer since the last order, the more churn,
# and the more overdue against one's own rhythm; the more orders, the less.
MONOTONE = {
    "recency_days": 1,
    "overdue_ratio": 1,
    "frequency": -1,
    "orders_30d": -1,
    "orders_90d": -1,
    "orders_180d": -1,
    "orders_365d": -1,
}
# Calibration is cross-fitted on 3 folds, on 2 from this many rows: each half then holds
# 50,000 rows or more, ample for an isotonic fit, and the final fit costs two fits of
# the model instead of three (the weekly retrain of a 200,000-customer shop has a
# five-minute budget).
TWO_CALIBRATION_FOLDS_FROM = 100_000
# LightGBM's trees are added until the fold's validation log-loss has not improved for
# this many rounds, up to the cap; the final fit uses the folds' mean best round.
EARLY_STOPPING_ROUNDS = 30
MAX_TREES = 600


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


Grid = list[dict[str, Any]] | Callable[[int, Sequence[str]], list[dict[str, Any]]]


@dataclass
class Candidate:
    """One algorithm of the zoo: how to build it and the grid it may search, fixed or
    sized to (rows fitted per fold, features)."""

    name: str
    build: Callable[[dict[str, Any], int], BaseEstimator]
    grid: Grid
    max_rows: int | None = None  # slow learners are fitted on a fixed-seed sample
    calibrate: bool = True
    early_stopping: bool = False  # LightGBM: stop on each fold's validation rows
    grouped: bool = False  # fit takes the rows' customer ids as ``groups``
    # Moved to the season of the window it scores (``ml.season``); recency alone stays
    # exactly that, the bar every champion must clear.
    seasonal: bool = True
    # One fit runs on one thread in compiled code that releases the GIL (trees, liblinear,
    # L-BFGS): N_JOBS of its fits then run at once in threads. LightGBM and the forest use
    # N_JOBS threads themselves; the MLP's mini-batch loop holds the GIL.
    gil_free: bool = False

    def settings(self, rows: int, features: Sequence[str]) -> list[dict[str, Any]]:
        return self.grid(rows, features) if callable(self.grid) else self.grid


@dataclass
class TrainedModel:
    algorithm: str
    params: dict[str, Any]
    features: list[str]
    estimator: Any
    search: list[dict[str, Any]] = field(default_factory=list)
    # Of the chosen setting over the validation folds: mean, standard deviation, count,
    # and the mean Brier score after calibration on the folds.
    validation_auc: float = float("nan")
    validation_auc_std: float = float("nan")
    validation_folds: int = 0
    validation_brier: float = float("nan")
    fit_seconds: float = 0.0
    # The mean length, in average days, of the label windows it was fitted on; NaN for a
    # model that is not moved to the season of the window it scores.
    trained_horizon: float = float("nan")

    @property
    def validation_auc_se(self) -> float:
        if self.validation_folds < 2:
            return 0.0
        return self.validation_auc_std / np.sqrt(self.validation_folds)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.for_window(self.estimator.predict_proba(X[self.features])[:, 1], X)

    def for_window(self, probability: np.ndarray, X: pd.DataFrame) -> np.ndarray:
        """The estimator's probabilities for the rows of ``X``, moved from the season of
        the windows it was fitted on to that of each row's window."""
        return season.for_window(probability, X, trained_horizon=self.trained_horizon)


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


def _logistic(params: dict[str, Any], seed: int) -> Pipeline:
    return _scaled(LogisticRegression(C=params["C"], max_iter=500))


def _lightgbm(params: dict[str, Any], seed: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=params.get("n_estimators", MAX_TREES),
        learning_rate=0.05,
        num_leaves=params["num_leaves"],
        min_child_samples=params["min_child_samples"],
        monotone_constraints=params.get("monotone_constraints"),
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=N_JOBS,
        verbose=-1,
    )


def _lightgbm_grid(rows: int, features: Sequence[str]) -> list[dict[str, Any]]:
    """Leaves and the smallest leaf grow with the rows a fold fits on: 3 and 7 leaves of
    at least 20 rows for a 2,000-customer shop, 31 and 63 leaves of at least 120 for the
    60,000-row search sample of a large one. The number of trees is found by early
    stopping, so the grid stays at three settings."""
    leaves = int(np.clip(2 ** np.round(np.log2(max(rows, 1) / 1_000)), 8, 64))
    smallest = int(np.clip(rows // 500, 20, 200))
    monotone = [MONOTONE.get(f, 0) for f in features]
    constraints = {"monotone_constraints": monotone} if any(monotone) else {}
    return [
        {"num_leaves": leaves // 2 - 1, "min_child_samples": smallest, **constraints},
        {"num_leaves": leaves - 1, "min_child_samples": smallest, **constraints},
        {"num_leaves": leaves - 1, "min_child_samples": 4 * smallest, **constraints},
    ]


def _ensemble(params: dict[str, Any], seed: int) -> StackedEnsemble:
    return StackedEnsemble(
        members=[
            ("logistic_regression", _logistic(params["logistic_regression"], seed)),
            ("lightgbm", _lightgbm(params["lightgbm"], seed)),
        ]
    )


ZOO: dict[str, Candidate] = {
    c.name: c
    for c in [
        Candidate(BASELINE, _recency_only, [{}], calibrate=False, seasonal=False),
        Candidate("logistic_regression", _logistic, [{"C": 0.1}, {"C": 1.0}], gil_free=True),
        Candidate(
            "decision_tree",
            lambda p, s: DecisionTreeClassifier(
                max_depth=p["max_depth"], min_samples_leaf=100, random_state=s
            ),
            [{"max_depth": 4}, {"max_depth": 6}, {"max_depth": 8}],
            gil_free=True,
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
            gil_free=True,
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
        Candidate("lightgbm", _lightgbm, _lightgbm_grid, early_stopping=True),
        # Its grid is made from its members' tuned settings by ``train_zoo``.
        Candidate(ENSEMBLE, _ensemble, [], calibrate=False, grouped=True, max_rows=200_000),
    ]
}
ALGORITHMS: tuple[str, ...] = tuple(ZOO)


def ensemble_candidate(members: dict[str, dict[str, Any]]) -> Candidate:
    """The ensemble of members with the settings each was tuned to in the same zoo (so
    it searches nothing of its own)."""
    return replace(ZOO[ENSEMBLE], grid=[dict(members)])


# Validation scores are log-odds (or a decision function): AUC only needs their order,
# and the validation Brier score calibrates them from there.
_scores = log_odds


def _calibrated_brier(y: np.ndarray, scores: np.ndarray) -> float:
    """Brier score of ``scores`` after a logistic calibration fitted on one half of the
    rows and applied to the other, both ways."""
    half = np.arange(len(y)) % 2 == 0
    probability = np.empty(len(y))
    for fit in (half, ~half):
        if len(np.unique(y[fit])) < 2:
            return float("nan")
        calibrator = LogisticRegression(C=1e4).fit(scores[fit, None], y[fit])
        probability[~fit] = calibrator.predict_proba(scores[~fit, None])[:, 1]
    return float(brier_score_loss(y, probability))


def validation_folds(
    data: Dataset, *, folds: int = VALIDATION_FOLDS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin folds as (fit mask, validation mask) pairs.

    Fold k validates at the k-th latest cut-off on one group of customers and fits on
    every other customer's rows at cut-offs up to that one, so no validated customer's
    history or label window is ever fitted in its fold. With fewer cut-offs than folds
    the earliest cut-off is reused with another customer group.

    While the folds have validated fewer than ``MIN_VALIDATION_ROWS`` rows in all, they
    are dealt again with the customers in other groups (up to ``MAX_DEALS`` deals): the
    result is ``folds`` pairs per deal, fold k of every deal at the same cut-off.
    """
    cutoffs = np.unique(data.cutoffs)
    origins = [cutoffs[max(len(cutoffs) - 1 - k, 0)] for k in range(folds)]
    result: list[tuple[np.ndarray, np.ndarray]] = []
    validated = 0
    for deal in range(MAX_DEALS):
        # Salt 1 deals the ensemble's out-of-fold groups, which must stay independent.
        salt = 0 if deal == 0 else OUT_OF_FOLD_SALT + deal
        groups = customer_groups(data.customer_ids, folds, salt=salt)
        for k, origin in enumerate(origins):
            validate = (data.cutoffs == origin) & (groups == k)
            result.append(((data.cutoffs <= origin) & (groups != k), validate))
            validated += int(validate.sum())
        if validated >= MIN_VALIDATION_ROWS:
            break
    return result


def _fit(
    candidate: Candidate,
    params: dict[str, Any],
    seed: int,
    data: Dataset,
    features: list[str],
    validation: Dataset | None = None,
) -> BaseEstimator:
    """One fit of ``candidate``; with ``validation`` rows, early stopping on them if the
    candidate stops early."""
    model = candidate.build(params, seed)
    extra: dict[str, Any] = {"groups": data.customer_ids} if candidate.grouped else {}
    if candidate.early_stopping and validation is not None:
        extra["eval_X"], extra["eval_y"] = validation.X[features], validation.y
        extra["callbacks"] = [lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
    return model.fit(data.X[features], data.y, **extra)


@contextmanager
def _parallel_fits(candidate: Candidate) -> Iterator[None]:
    """Within it, joblib runs a GIL-free candidate's fits ``N_JOBS`` at once in threads,
    each on one BLAS thread (more would only contend for the same cores); any other
    candidate's one at a time. Threads, not processes: a Celery worker's process may not
    start processes of its own."""
    if candidate.gil_free:
        with parallel_config(backend="threading", n_jobs=N_JOBS), threadpool_limits(1):
            yield
    else:
        yield


def _validate(
    candidate: Candidate,
    params: dict[str, Any],
    seed: int,
    fit: Dataset,
    validation: Dataset,
    features: list[str],
) -> tuple[float, float, int]:
    """One setting on one fold: validation AUC, calibrated Brier score, and the trees
    early stopping kept (0 for a candidate that does not stop early)."""
    model = _fit(candidate, params, seed, fit, features, validation=validation)
    scores = _scores(model, validation.X[features])
    trees = getattr(model, "best_iteration_", 0) or 0
    return roc_auc_score(validation.y, scores), _calibrated_brier(validation.y, scores), trees


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
    # Fold k of every deal (``validation_folds``) is one fold: its AUC is their mean.
    folds = [
        (k % VALIDATION_FOLDS, f.sample(rows, seed), v)
        for k, (f, v) in enumerate(fold_parts(data) if folds is None else folds)
    ]
    folds = [p for p in folds if len(np.unique(p[1].y)) == 2 and len(np.unique(p[2].y)) == 2]
    fitted_rows = int(np.median([len(f.y) for _, f, _ in folds])) if folds else len(data.y)
    search: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    settings = candidate.settings(fitted_rows, features) if folds else []
    with _parallel_fits(candidate):
        outcomes = Parallel()(
            delayed(_validate)(candidate, params, seed, f, v, features)
            for params in settings
            for _, f, v in folds
        )
    position, n = np.array([k for k, _, _ in folds]), len(folds)
    for i, params in enumerate(settings):
        aucs, briers, rounds = map(np.array, zip(*outcomes[i * n : (i + 1) * n], strict=True))
        fold_aucs = [float(aucs[position == k].mean()) for k in np.unique(position)]
        entry = {
            "params": params,
            "inner_auc": float(np.mean(fold_aucs)),
            "fold_aucs": fold_aucs,
            "inner_brier": float(np.mean(briers)),
            "deals": int(np.bincount(position).max()),
        }
        if candidate.early_stopping:
            entry["fold_trees"] = [int(r) for r in rounds]
        search.append(entry)
        if not best or entry["inner_auc"] > best["inner_auc"]:
            best = entry
    params = dict(best["params"]) if best else candidate.settings(fitted_rows, features)[0]
    if candidate.early_stopping and best:
        # The whole training set gets as many trees as the folds needed on average.
        params["n_estimators"] = max(round(float(np.mean(best["fold_trees"]))), 1)

    final = data.sample(candidate.max_rows, seed) if candidate.max_rows else data
    if candidate.calibrate:
        method = "isotonic" if len(final.y) >= 10_000 else "sigmoid"
        cv = 2 if len(final.y) >= TWO_CALIBRATION_FOLDS_FROM else 3
        calibrated = CalibratedClassifierCV(
            candidate.build(params, seed), method=method, cv=cv, ensemble=False
        )
        with _parallel_fits(candidate):
            estimator = calibrated.fit(final.X[features], final.y)
    else:
        estimator = _fit(candidate, params, seed, final, features)
    aucs = np.array(best.get("fold_aucs", []))
    seasonal = candidate.seasonal and season.HORIZON in final.X.columns
    return TrainedModel(
        algorithm=candidate.name,
        params=params,
        features=features,
        estimator=estimator,
        search=search,
        validation_auc=float(aucs.mean()) if len(aucs) else float("nan"),
        validation_auc_std=float(aucs.std(ddof=1)) if len(aucs) > 1 else float("nan"),
        validation_folds=len(aucs),
        validation_brier=best.get("inner_brier", float("nan")),
        fit_seconds=time.perf_counter() - started,
        trained_horizon=float(final.X[season.HORIZON].mean()) if seasonal else float("nan"),
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
    """Train every requested algorithm; an unknown name is a ValueError, not a skip.

    The ensemble is trained after its members, with the settings they were tuned to;
    members the caller did not ask for are tuned for it and not returned."""
    unknown = sorted(set(algorithms) - set(ZOO))
    if unknown:
        raise ValueError(f"unknown algorithms: {', '.join(unknown)}; known: {', '.join(ZOO)}")
    if len(np.unique(data.y)) < 2:
        raise ValueError("training labels hold only one class; widen the training window")
    folds = fold_parts(data)
    wanted = list(algorithms)
    if ENSEMBLE in wanted:
        wanted = [n for n in wanted if n != ENSEMBLE]
        wanted += [m for m in ENSEMBLE_MEMBERS if m not in wanted] + [ENSEMBLE]
    trained: dict[str, TrainedModel] = {}
    for name in wanted:
        candidate = ZOO[name]
        if name == ENSEMBLE:
            candidate = ensemble_candidate({m: trained[m].params for m in ENSEMBLE_MEMBERS})
        trained[name] = train_candidate(candidate, data, features=features, seed=seed, folds=folds)
    return [trained[name] for name in algorithms]


def choose(models: Sequence[TrainedModel]) -> TrainedModel:
    """The simplest model that is truly tied with the best mean validation AUC: within
    one standard error of it and within ``AUC_GIVE``, and with a validation Brier score
    within ``BRIER_GIVE`` of the best model's (see the module docstring for why both)."""
    scored = [m for m in models if np.isfinite(m.validation_auc)]
    if not scored:
        raise ValueError(
            "no model could be validated: the training data lacks a fold with both outcomes"
        )
    best = max(scored, key=lambda m: m.validation_auc)
    give = min(best.validation_auc_se, AUC_GIVE)

    def tied(m: TrainedModel) -> bool:
        if m.validation_auc < best.validation_auc - give:
            return False
        # A Brier score that could not be measured (one outcome in half a fold) does not
        # block the tie; AUC still does.
        return not m.validation_brier > best.validation_brier + BRIER_GIVE

    unranked = max(COMPLEXITY.values()) + 1
    near = [m for m in scored if tied(m)]
    return min(near, key=lambda m: (COMPLEXITY.get(m.algorithm, unranked), -m.validation_auc))
