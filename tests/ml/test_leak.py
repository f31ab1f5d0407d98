"""The leak issue 16 found, on data where it arises: training cut-offs 30 days apart with a
90-day horizon, so adjacent cut-offs share two thirds of their label windows.

The old inner validation (removed from ``ml.training``; its split is rebuilt here as it
was, in ``old_inner_auc``) fitted on the earlier training cut-offs and validated on the
latest one, with the same customers. A model that merely looks customers up in the
training labels then reads most of the validation window's outcome off its neighbour's,
wins, and loses to recency alone on the future. The new protocol
(``training.validation_folds``) validates on customers held out of everything fitted in
their fold, so looking customers up earns nothing there.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score

from ml import training
from ml.training import BASELINE, Dataset

HORIZON = 90.0
TRAINING_CUTOFFS = (300.0, 330.0, 360.0)
FUTURE = 450.0  # the last training cut-off plus the horizon, as backtest judges


def buy_till_you_die(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of every purchase: a first purchase at sign-up (days 0-250), then
    Poisson purchases with a per-customer rate until leaving after one of them."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.5, 1 / 45, n)
    dropout = rng.beta(1.0, 6.0, n)
    now = rng.uniform(0, 250, n)
    alive = np.ones(n, dtype=bool)
    who, when = [], []
    while alive.any():
        idx = np.flatnonzero(alive)
        who.append(idx)
        when.append(now[idx])
        alive[idx[rng.random(idx.size) < dropout[idx]]] = False
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / rate[idx])
        alive[idx[now[idx] > FUTURE + HORIZON]] = False
    return np.concatenate(who), np.concatenate(when)


def at_cutoffs(purchases: tuple[np.ndarray, np.ndarray], cutoffs, n: int) -> Dataset:
    """Recency and the churn label (no purchase in the next HORIZON days) of every
    customer who bought before each cut-off, stacked over the cut-offs."""
    who, when = purchases
    parts = []
    for cutoff in cutoffs:
        last = np.full(n, -np.inf)
        np.maximum.at(last, who[when <= cutoff], when[when <= cutoff])
        window = (when > cutoff) & (when <= cutoff + HORIZON)
        churned = np.bincount(who[window], minlength=n) == 0
        seen = np.isfinite(last)
        ids = np.flatnonzero(seen) + 1
        X = pd.DataFrame({"recency_days": cutoff - last[seen], "customer_key": ids.astype(float)})
        day = np.datetime64("2025-01-01") + int(cutoff)
        parts.append(Dataset(X, churned[seen].astype(int), ids, np.full(ids.size, day)))
    return Dataset(
        pd.concat([p.X for p in parts], ignore_index=True),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.customer_ids for p in parts]),
        np.concatenate([p.cutoffs for p in parts]),
    )


class CustomerLookup(ClassifierMixin, BaseEstimator):
    """Memorises customers: predicts each one's mean training label, and the overall
    churn rate for a customer it never saw."""

    def fit(self, X, y):
        self.table_ = pd.Series(np.asarray(y, dtype=float)).groupby(np.asarray(X)[:, 0]).mean()
        self.prior_ = float(np.mean(y))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = pd.Series(np.asarray(X)[:, 0]).map(self.table_).fillna(self.prior_).to_numpy()
        return np.column_stack([1 - p, p])


MEMORISER = training.Candidate("memoriser", lambda p, s: CustomerLookup(), [{}], calibrate=False)
RECENCY = training.ZOO[BASELINE]
KEY, RECENCY_FEATURES = ["customer_key"], ["recency_days"]


def old_inner_auc(candidate: training.Candidate, data: Dataset, features: list[str]) -> float:
    """The removed protocol: fit on the earlier training cut-offs, validate on the latest
    one, the same customers in both."""
    latest = data.cutoffs == data.cutoffs.max()
    fit, validate = data.take(~latest), data.take(latest)
    model = candidate.build(candidate.grid[0], 0).fit(fit.X[features], fit.y)
    return roc_auc_score(validate.y, training._scores(model, validate.X[features]))


def test_a_model_that_memorises_customers_wins_the_old_validation_and_loses_the_new():
    n = 4000
    purchases = buy_till_you_die(n, seed=5)
    train = at_cutoffs(purchases, TRAINING_CUTOFFS, n)
    future = at_cutoffs(purchases, [FUTURE], n)

    old_memoriser = old_inner_auc(MEMORISER, train, KEY)
    old_recency = old_inner_auc(RECENCY, train, RECENCY_FEATURES)
    assert old_memoriser > old_recency + 0.03, "the old protocol rewards memorising"

    memoriser = training.train_candidate(MEMORISER, train, features=KEY)
    recency = training.train_candidate(RECENCY, train, features=RECENCY_FEATURES)
    assert memoriser.validation_folds == recency.validation_folds == training.VALIDATION_FOLDS
    assert memoriser.validation_auc < 0.55 < recency.validation_auc - 0.1
    models = [memoriser, recency]
    assert training.choose(models) is recency

    # The future agrees with the new protocol: the old one's winner is the worse model.
    future_auc = {m.algorithm: roc_auc_score(future.y, m.predict_proba(future.X)) for m in models}
    assert future_auc["memoriser"] < future_auc[BASELINE] - 0.02
