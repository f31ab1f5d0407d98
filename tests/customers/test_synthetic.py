import datetime as dt

import numpy as np
import pytest
from django.db.models import Count, Q
from sklearn.metrics import roc_auc_score

from customers.models import (
    Customer,
    Event,
    Order,
    Product,
    SyntheticResponse,
    SyntheticShop,
    SyntheticTruth,
)
from customers.synthetic.selectors import true_churn_probabilities
from customers.synthetic.services import generate_shop
from ml.labels import churn_labels
from ml.models import ChurnDefinition

END = dt.date(2026, 6, 30)
CUT = END - dt.timedelta(days=90)


@pytest.fixture(scope="module")
def shop(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        record = generate_shop(customers=4000, days=730, seed=11, end=END)
    yield record
    with django_db_blocker.unblock():
        for model in (SyntheticShop, Customer, Product):
            model.objects.all().delete()


@pytest.fixture
def realised(shop, db):
    truth = true_churn_probabilities(as_of=CUT, horizon_days=90)
    labels = churn_labels(truth["customer_id"].to_numpy(), as_of=CUT, definition=ChurnDefinition())
    return truth.assign(churned=labels)


def test_the_shop_has_a_believable_shape(shop, db):
    paid = Customer.objects.annotate(n=Count("orders", filter=Q(orders__status="paid")))
    buyers = paid.filter(n__gte=1).count()
    assert buyers == 4000  # everyone signs up with a purchase
    assert 0.4 <= paid.filter(n__gte=2).count() / buyers <= 0.8
    assert paid.order_by("-n").first().n < 200
    assert Order.objects.exclude(status="paid").exists()
    kinds = set(Event.objects.values_list("kind", flat=True).distinct())
    assert kinds == {k.value for k in Event.Kind}
    december = Order.objects.filter(placed_at__month=12).count()
    june = Order.objects.filter(placed_at__month=6).count()
    assert december > june  # the season peaks before Christmas
    assert SyntheticResponse.objects.count() == 5 * 4000


def test_churn_share_and_the_truth_agree_with_what_happened(realised):
    churn = realised["churned"].mean()
    assert 0.45 <= churn <= 0.8
    assert abs(realised["probability"].mean() - churn) < 0.03
    assert roc_auc_score(realised["churned"], realised["probability"]) > 0.85
    ordered = realised.sort_values("probability")
    for rows in np.array_split(np.arange(len(ordered)), 5):  # calibrated by quintile
        part = ordered.iloc[rows]
        assert abs(part["probability"].mean() - part["churned"].mean()) < 0.08


def test_the_truth_from_the_database_is_the_generators_own(shop, db):
    recomputed = true_churn_probabilities(as_of=END, horizon_days=90).set_index("customer_id")
    stored = dict(SyntheticTruth.objects.values_list("customer_id", "true_churn_prob"))
    assert len(recomputed) == len(stored)
    assert np.allclose(recomputed["probability"], [stored[c] for c in recomputed.index])


def test_bad_reviews_predict_leaving(realised, db):
    last_rating = {}
    reviews = Event.objects.filter(
        kind="review", occurred_at__lt=dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    )
    for customer_id, value in reviews.order_by("occurred_at").values_list("customer_id", "value"):
        last_rating[customer_id] = value
    frame = realised.assign(rating=realised["customer_id"].map(last_rating))
    low = frame[frame["rating"] <= 2]["churned"].mean()
    high = frame[frame["rating"] >= 4]["churned"].mean()
    assert low > high + 0.1


def test_responses_are_heterogeneous(shop, db):
    boosts = np.array(SyntheticResponse.objects.values_list("purchase_boost", flat=True))
    shocks = np.array(SyntheticResponse.objects.values_list("dropout_shock", flat=True))
    assert 0.3 < (boosts == 0).mean() < 0.7  # many do not react
    assert boosts.max() > 0.3  # some react strongly
    assert 0.02 < (shocks > 0).mean() < 0.2  # a few react badly
