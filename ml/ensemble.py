"""The stacked ensemble: members' out-of-fold log-odds combined by a logistic regression
with non-negative weights.

Stacked rather than averaged, because how much each member deserves differs by shop: on
the robustness bench's default shop the stacker gave the linear model no weight and
LightGBM 1.04, on the bare transaction log 0.27 and 0.74; fixed weights would be one
more guess. The stacker is fitted on out-of-fold predictions from folds grouped by
customer: a customer's rows at neighbouring cut-offs share most of their label window,
so a member that had seen the same customer a month earlier would look better out of
fold than it is, and the stacker would learn to trust the most flexible member for the
reason issue 16 found in model selection.

The weights are kept non-negative: both members predict the same outcome, and on such
collinear inputs an unconstrained stacker can give one of them a negative weight, which
would turn that member's reasons around. With ``w >= 0`` the ensemble's log-odds is
``intercept + sum_j w_j * member_j's log-odds``, so its explanation is the members' own
per-feature contributions weighted the same way (``ml.explain``), and the logistic
stacker is also the ensemble's calibration (Platt scaling of the weighted sum).

The BG/NBD purchase-pattern probabilities reach the ensemble as features of both
members (``bgnbd_p_alive`` and ``bgnbd_expected_orders`` are built with every cut-off's
features), not as a third member: P(alive) is exactly 1 for every one-order customer
whatever their silence, so its log-odds as a stacker input would give them all one
extreme value.

Pure numerics, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, log_expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from ml.grouping import customer_groups

# The out-of-fold split must be independent of the validation folds' (salt 0, and the
# salts above this one for small data's further deals), inside which the ensemble is
# fitted with one customer group already left out.
OUT_OF_FOLD_SALT = 1


def log_odds(member: BaseEstimator, X: pd.DataFrame) -> np.ndarray:
    """A fitted member's churn log-odds: LightGBM's raw score, a linear model's decision
    function (both exactly what their probabilities are the logistic of)."""
    if isinstance(member, lgb.LGBMClassifier):
        return member.predict(X, raw_score=True)
    if hasattr(member, "decision_function"):
        return member.decision_function(X)
    return logit(np.clip(member.predict_proba(X)[:, 1], 1e-6, 1 - 1e-6))


def _stacker(inputs: np.ndarray, y: np.ndarray, *, ridge: float = 1e-4) -> tuple[float, np.ndarray]:
    """Intercept and non-negative weights minimising the mean log-loss; a small ridge keeps
    the weights finite when the members separate the rows perfectly."""
    n, m = inputs.shape
    sign = 2.0 * y - 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (theta[0] + inputs @ theta[1:])
        value = -log_expit(margin).mean() + ridge * theta[1:] @ theta[1:]
        residual = -sign * expit(-margin) / n
        grad = np.concatenate([[residual.sum()], inputs.T @ residual + 2 * ridge * theta[1:]])
        return value, grad

    start = np.concatenate([[0.0], np.full(m, 1.0 / m)])
    start[0] = logit(np.clip(y.mean(), 1e-3, 1 - 1e-3)) - inputs.mean(axis=0) @ start[1:]
    bounds = [(None, None)] + [(0.0, None)] * m
    result = optimize.minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(result.x[0]), result.x[1:]


class StackedEnsemble(ClassifierMixin, BaseEstimator):
    """``members`` are (name, unfitted estimator) pairs; ``fit`` takes the rows' customer
    ids as ``groups`` so the out-of-fold split keeps each customer's rows together."""

    def __init__(self, members: Sequence[tuple[str, BaseEstimator]] = (), folds: int = 3):
        self.members = members
        self.folds = folds

    def fit(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None):
        y = np.asarray(y)
        ids = np.arange(len(y)) if groups is None else np.asarray(groups)
        fold = customer_groups(ids, self.folds, salt=OUT_OF_FOLD_SALT)
        inputs = np.zeros((len(y), len(self.members)))
        covered = np.zeros(len(y), dtype=bool)
        for k in range(self.folds):
            held = fold == k
            # A fold whose fitted part has one outcome (tiny data) gives no predictions.
            if not held.any() or len(np.unique(y[~held])) < 2:
                continue
            for j, (_, member) in enumerate(self.members):
                fitted = clone(member).fit(X[~held], y[~held])
                inputs[held, j] = log_odds(fitted, X[held])
            covered |= held
        if len(np.unique(y[covered])) < 2:
            raise ValueError("the ensemble's out-of-fold predictions hold only one outcome")
        self.intercept_, self.weights_ = _stacker(inputs[covered], y[covered])
        self.members_ = [(name, clone(member).fit(X, y)) for name, member in self.members]
        self.classes_ = np.array([0, 1])
        return self

    def member_log_odds(self, X: pd.DataFrame) -> np.ndarray:
        """(rows x members) log-odds of the fitted members."""
        return np.column_stack([log_odds(member, X) for _, member in self.members_])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.intercept_ + self.member_log_odds(X) @ self.weights_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])
