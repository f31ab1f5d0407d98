"""Per-customer contributions: why the model thinks this customer is leaving.

Each algorithm explains itself in its own terms, never through a global importance chart:
LightGBM's exact TreeSHAP (``pred_contrib``); linear models' coefficient times the
customer's standardised value; trees by the change in churn share along the customer's
decision path (Saabas); the MLP and the baseline by occlusion (how the log-odds move when
one feature is set to the training median). Positive means "pushes towards churn". Units
differ between methods; only the ranking within one customer is used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import logit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from ml.training import TrainedModel


def _uncalibrated(estimator):
    if isinstance(estimator, CalibratedClassifierCV):
        # ensemble=False: one estimator fitted on all training rows sits behind the calibrator.
        return estimator.calibrated_classifiers_[0].estimator
    return estimator


def _tree_paths(tree: DecisionTreeClassifier, X: np.ndarray | pd.DataFrame) -> np.ndarray:
    t = tree.tree_
    counts = t.value[:, 0, :]
    share = counts[:, 1] / counts.sum(axis=1)
    parent = np.full(t.node_count, -1)
    for children in (t.children_left, t.children_right):
        has = children >= 0
        parent[children[has]] = np.flatnonzero(has)
    nodes = np.flatnonzero(parent >= 0)
    step = sparse.csr_matrix(
        (share[nodes] - share[parent[nodes]], (nodes, t.feature[parent[nodes]])),
        shape=(t.node_count, X.shape[1]),
    )
    return np.asarray((tree.decision_path(X) @ step).todense())


def _linear(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
    imputer, scaler, model = (step for _, step in pipeline.steps)
    z = scaler.transform(imputer.transform(X))
    terms = z * model.coef_.ravel()
    n = X.shape[1]
    result = terms[:, :n].copy()
    if imputer.indicator_ is not None:
        # "value missing" columns belong to the feature that is missing.
        for column, feature in enumerate(imputer.indicator_.features_):
            result[:, feature] += terms[:, n + column]
    return result


def _occlusion(model: TrainedModel, X: pd.DataFrame, reference: pd.Series) -> np.ndarray:
    base = logit(np.clip(model.predict_proba(X), 1e-6, 1 - 1e-6))
    result = np.empty((len(X), len(model.features)))
    for j, name in enumerate(model.features):
        replaced = X.copy()
        replaced[name] = reference[name]
        moved = logit(np.clip(model.predict_proba(replaced), 1e-6, 1 - 1e-6))
        result[:, j] = base - moved
    return result


def contributions(model: TrainedModel, X: pd.DataFrame, *, reference: pd.Series) -> np.ndarray:
    """(customers x model.features) contributions; ``reference`` holds training medians."""
    X = X[model.features]
    inner = _uncalibrated(model.estimator)
    if model.algorithm == "lightgbm":
        return inner.predict(X, pred_contrib=True)[:, :-1]
    if model.algorithm in {"logistic_regression", "linear_svm"}:
        return _linear(inner, X)
    if isinstance(inner, DecisionTreeClassifier):
        return _tree_paths(inner, X)
    if isinstance(inner, RandomForestClassifier):
        values = X.to_numpy(dtype=np.float32)  # the forest's trees were fitted on arrays
        return np.mean([_tree_paths(tree, values) for tree in inner.estimators_], axis=0)
    return _occlusion(model, X, reference)


def top_reasons(
    contrib: np.ndarray, features: list[str], *, k: int = 3
) -> list[list[tuple[str, float]]]:
    """The k features pushing hardest towards churn per customer (positive ones only)."""
    order = np.argsort(-contrib, axis=1)[:, :k]
    picked = np.take_along_axis(contrib, order, axis=1)
    return [
        [(features[j], float(v)) for j, v in zip(row, vals, strict=True) if v > 0]
        for row, vals in zip(order, picked, strict=True)
    ]
