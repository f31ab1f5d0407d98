"""The stacker learns how much to trust each member from customers that member never saw:
on issue 16's data (cut-offs 30 days apart, 90-day horizon), out-of-fold predictions
from folds that split a customer's rows reward a member that looks customers up, at the
expense of the one that reads their behaviour."""

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from ml import training
from ml.ensemble import StackedEnsemble
from tests.ml.test_leak import (
    TRAINING_CUTOFFS,
    CustomerLookup,
    at_cutoffs,
    buy_till_you_die,
)


def _customer_key(X):
    return X[["customer_key"]]


def test_the_stacker_gives_no_weight_to_a_member_that_only_recognises_customers():
    n = 3000
    purchases = buy_till_you_die(n, seed=8)
    train = at_cutoffs(purchases, TRAINING_CUTOFFS, n)
    members = [
        ("memoriser", make_pipeline(FunctionTransformer(_customer_key), CustomerLookup())),
        ("recency", training._recency_only({}, 0)),
    ]

    grouped = StackedEnsemble(members).fit(train.X, train.y, groups=train.customer_ids)
    by_row = StackedEnsemble(members).fit(train.X, train.y)  # a customer's rows split up
    memoriser, recency = 0, 1
    assert grouped.weights_[memoriser] < 0.06 and grouped.weights_[recency] > 0.9
    assert by_row.weights_[memoriser] > 0.1 and by_row.weights_[recency] < 0.6
