import datetime as dt

import numpy as np
import pandas as pd
import pytest

from customers.models import Customer, Product
from ml import season
from ml.features import FEATURE_NAMES, FEATURES, FRAME_COLUMNS, build_features
from ml.labels import churn_labels
from ml.models import ChurnDefinition
from ml.reasons import TEMPLATES
from tests.ml.history import event, order

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def shop(db):
    shoes = Product.objects.create(sku="S1", name="Shoe", category="shoes", price=50)
    hats = Product.objects.create(sku="H1", name="Hat", category="hats", price=20)
    regular = Customer.objects.create(external_id="regular")
    for day in ["2026-03-01", "2026-03-21", "2026-04-10", "2026-04-30"]:
        order(regular, day, "40", product=shoes)
    order(regular, "2026-05-10", "20", product=hats)
    order(regular, "2026-05-20", "99", status="refunded")
    event(regular, "login", "2026-06-25")
    event(regular, "visit", "2026-06-20")
    event(regular, "visit", "2026-05-20")
    event(regular, "review", "2026-05-01", 5)
    event(regular, "review", "2026-05-12", 2)
    event(regular, "support_ticket", "2026-06-01")
    once = Customer.objects.create(external_id="once")
    order(once, "2026-01-15", "80")
    Customer.objects.create(external_id="never-bought")
    cancelled_only = Customer.objects.create(external_id="cancelled-only")
    order(cancelled_only, "2026-02-01", "10", status="cancelled")
    return {"regular": regular, "once": once}


def features_at(as_of=AS_OF):
    return build_features(as_of=as_of, definition=ChurnDefinition(min_history_days=0)).frame


@pytest.mark.smoke
def test_features_describe_each_customers_history(shop):
    f = features_at()
    regular, once = shop["regular"].pk, shop["once"].pk
    assert set(f.index) == {regular, once}  # no order, or only cancelled: not scored
    assert list(f.columns) == FRAME_COLUMNS and FRAME_COLUMNS[: len(FEATURE_NAMES)] == FEATURE_NAMES
    r = f.loc[regular]
    assert r["frequency"] == 5
    days_since_noon_may_10 = (dt.date(2026, 7, 1) - dt.date(2026, 5, 10)).days - 0.5
    assert r["recency_days"] == pytest.approx(days_since_noon_may_10)
    assert r["gap_mean_days"] == pytest.approx(70 / 4)
    assert r["gap_std_days"] == pytest.approx(np.std([20, 20, 20, 10]))
    assert r["monetary_total"] == 180 and r["monetary_avg"] == 36
    assert r["orders_90d"] == 3 and r["spend_90d"] == 100
    assert r["spend_trend"] == pytest.approx((100 - 80) / 180)
    assert r["refund_share"] == pytest.approx(1 / 6)
    assert r["distinct_categories"] == 2
    assert r["visits_30d"] == 1 and r["visit_trend"] == 0
    assert r["days_since_login"] == pytest.approx(5.5)
    assert r["last_rating"] == 2 and r["avg_rating"] == 3.5
    days_since_noon_may_12 = (dt.date(2026, 7, 1) - dt.date(2026, 5, 12)).days - 0.5
    assert r["days_since_review"] == pytest.approx(days_since_noon_may_12)
    assert r["tickets_90d"] == 1
    assert r["days_since_ticket"] == pytest.approx(
        (dt.date(2026, 7, 1) - dt.date(2026, 6, 1)).days - 0.5
    )
    assert 0 < r["bgnbd_p_alive"] <= 1
    # Less than a year of orders: no season is known, the window is as long as it says.
    assert (f[season.HORIZON] == ChurnDefinition().horizon_days).all()
    # More orders, a surer rate: the posterior's shape grows by one per repeat order.
    assert r[season.RATE_SHAPE] == pytest.approx(f.loc[once, season.RATE_SHAPE] + 4)
    o = f.loc[once]
    assert o["frequency"] == 1 and np.isnan(o["gap_mean_days"]) and np.isnan(o["last_rating"])
    assert o["visits_30d"] == 0 and np.isnan(o["days_since_login"])
    assert np.isnan(o["days_since_review"]) and np.isnan(o["days_since_ticket"])


def test_features_at_as_of_never_change_when_later_rows_arrive(shop):
    before = features_at()
    regular, once = shop["regular"], shop["once"]
    # The first instant after as_of and everything later is the future.
    order(regular, "2026-07-01", "500", hour=0)
    order(once, "2026-08-01", "10")
    order(Customer.objects.create(external_id="newcomer"), "2026-07-02", "10")
    event(regular, "review", "2026-07-01", 1)
    event(regular, "login", "2026-07-03")
    event(once, "visit", "2026-07-01")
    pd.testing.assert_frame_equal(before, features_at())


def test_a_row_on_the_last_second_of_as_of_is_history(shop):
    order(shop["once"], "2026-06-30", "10", hour=23)
    assert features_at().loc[shop["once"].pk, "frequency"] == 2


def test_labels_look_only_at_the_horizon_after_as_of(shop):
    regular, once = shop["regular"], shop["once"]
    definition = ChurnDefinition(horizon_days=90)
    ids = np.array([regular.pk, once.pk])
    assert churn_labels(ids, as_of=AS_OF, definition=definition).tolist() == [1, 1]
    order(regular, "2026-09-28", "10", hour=23)  # day 90 of the horizon: counts
    order(once, "2026-09-29", "10", hour=0)  # day 91: too late
    assert churn_labels(ids, as_of=AS_OF, definition=definition).tolist() == [0, 1]
    order(once, "2026-07-05", "10", status="refunded")  # not a qualifying status
    assert churn_labels(ids, as_of=AS_OF, definition=definition).tolist() == [0, 1]
    counted = ChurnDefinition(horizon_days=90, qualifying_statuses=["paid", "refunded"])
    assert churn_labels(ids, as_of=AS_OF, definition=counted).tolist() == [0, 0]


def test_every_feature_is_described_and_has_a_reason_template():
    assert set(FEATURES) == set(TEMPLATES)
    assert all(FEATURES.values())


# Serialized like every other transactional test: a plain flush would re-create the
# content types under new ids, and the next serialized restore would collide with them.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_a_transaction_the_history_streams_over_its_own_connection_alike(shop, monkeypatch):
    """``build_features`` in a nightly job runs outside a transaction and reads orders and
    lines over dedicated asyncpg connections, each table in two ranges of blocks at once;
    inside one it reads through Django's. Same numbers either way."""
    from django.db import connection, transaction

    import core.sql

    streams = []
    copy_all = core.sql._copy_all
    monkeypatch.setattr(core.sql, "_copy_all", lambda s: streams.append(len(s)) or copy_all(s))
    assert not connection.in_atomic_block
    outside = features_at()
    assert streams == ([4] if connection.vendor == "postgresql" else [])
    with transaction.atomic():
        inside = features_at()
    pd.testing.assert_frame_equal(outside, inside)
    assert outside.loc[shop["regular"].pk, "distinct_categories"] == 2


def test_lines_without_a_product_have_no_category_and_break_nothing(shop):
    """A plain transaction log gives lines without a product; the binary stream of lines
    has fixed-width rows, so a NULL there used to break every feature."""
    from customers.models import OrderLine

    once = shop["once"]
    OrderLine.objects.create(
        order=once.orders.get(), position=1, sku="", quantity=1, unit_price=80, amount=80
    )
    frame = features_at()
    assert frame.loc[shop["regular"].pk, "distinct_categories"] == 2
    assert not frame.loc[once.pk, "distinct_categories"] > 0
