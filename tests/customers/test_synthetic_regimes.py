"""The generator's regimes record what they claim to, and the truth stays the probability
given what was recorded: the database's recomputation equals the generator's own, and it
is calibrated where a careless truth would not be."""

import dataclasses
import datetime as dt

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import Count
from sklearn.metrics import log_loss

from customers.models import Customer, Event, Order, OrderLine, Product, SyntheticTruth
from customers.synthetic.process import REGIMES
from customers.synthetic.selectors import (
    observed_history,
    shop_process,
    true_churn_probabilities,
)
from customers.synthetic.services import generate_shop
from customers.synthetic.truth import churn_probability_of
from ml.labels import churn_labels
from ml.models import ChurnDefinition

END = dt.date(2026, 6, 30)
CUT = END - dt.timedelta(days=90)


def shop_in(regime: str, customers: int = 2500, seed: int = 21):
    return generate_shop(customers=customers, days=500, seed=seed, end=END, process=REGIMES[regime])


def truth_matches_the_generators(shop) -> None:
    recomputed = true_churn_probabilities(as_of=END, horizon_days=90).set_index("customer_id")
    stored = dict(SyntheticTruth.objects.values_list("customer_id", "true_churn_prob"))
    assert len(recomputed) == len(stored) == shop.customers
    assert np.allclose(recomputed["probability"], [stored[c] for c in recomputed.index])


@pytest.mark.parametrize("regime", sorted(set(REGIMES) - {"default"}))
def test_every_regime_round_trips_its_process_and_its_truth(db, regime):
    shop = shop_in(regime, customers=800)
    params, _ = shop_process(shop)
    assert params == dataclasses.replace(REGIMES[regime], horizon_days=90)
    truth_matches_the_generators(shop)


def test_a_transaction_log_holds_paid_orders_and_nothing_else(db):
    call_command(
        "generate_shop", "--customers", "800", "--end", str(END), "--regime", "transactions"
    )
    assert Order.objects.exists()
    assert not Order.objects.exclude(status="paid").exists()
    assert not (Event.objects.exists() or OrderLine.objects.exists() or Product.objects.exists())


def test_events_are_missing_for_a_third_and_the_truth_weighs_untracked_against_quiet(db):
    shop = shop_in("missing_events")
    tracked = Customer.objects.annotate(n=Count("events")).filter(n__gt=0).count()
    assert 0.6 < tracked / 2500 < 0.73
    history, T = observed_history(shop, as_of=CUT)
    ids = history["customer_id"].to_numpy()
    churned = churn_labels(ids, as_of=CUT, definition=ChurnDefinition())
    silent = ((history["sessions"] == 0) & (history["events"] == 0)).to_numpy()
    assert silent.sum() > 500
    params, clock = shop_process(shop)
    honest = churn_probability_of(history, params, clock, T=T, horizon=90)
    assert abs(honest[silent].mean() - churned[silent].mean()) < 0.03
    # Reading every silent customer as tracked and quiet overstates their churn, and
    # predicts their outcomes worse than weighing both explanations.
    everyone = dataclasses.replace(params, events_recorded=1.0)
    naive = churn_probability_of(history, everyone, clock, T=T, horizon=90)
    assert naive[silent].mean() > honest[silent].mean() + 0.02
    y = churned[silent]
    assert log_loss(y, honest[silent]) < log_loss(y, naive[silent]) - 0.01


def test_holiday_peaks_concentrate_orders_and_the_truth_follows_the_season(db):
    shop_in("seasonal")
    weeks = Order.objects.filter(placed_at__year=2025, placed_at__month=11)
    black_friday = weeks.filter(placed_at__day__range=(27, 29)).count() / 3
    early_november = weeks.filter(placed_at__day__range=(1, 15)).count() / 15
    assert black_friday > 2 * early_november  # about 1.05 without the peak
    for as_of in (dt.date(2025, 10, 15), CUT):  # a window with the holidays, one without
        truth = true_churn_probabilities(as_of=as_of, horizon_days=60)
        definition = ChurnDefinition(horizon_days=60)
        churned = churn_labels(truth["customer_id"].to_numpy(), as_of=as_of, definition=definition)
        assert abs(truth["probability"].mean() - churned.mean()) < 0.03, as_of
