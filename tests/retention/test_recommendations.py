import datetime as dt

import numpy as np
import pytest

from customers.models import Product
from ml.features import build_features
from ml.models import ChurnDefinition
from ml.recommendations import NO_PICK, CategoryGroups, Lines, recommend
from tests.factories import customer
from tests.ml.history import order

AS_OF = dt.date(2026, 6, 30)


@pytest.mark.smoke
@pytest.mark.django_db
def test_recommendations_come_from_the_favourite_category_and_skip_what_they_own():
    boots = Product.objects.create(sku="BOOT", name="Boots", category="shoes", price=90)
    trainers = Product.objects.create(sku="TRAIN", name="Trainers", category="shoes", price=70)
    sandals = Product.objects.create(sku="SAND", name="Sandals", category="shoes", price=30)
    hat = Product.objects.create(sku="HAT", name="Hat", category="hats", price=20)
    fan = customer("fan")
    order(fan, "2026-05-01", product=boots)
    order(fan, "2026-05-20", product=boots)
    order(fan, "2026-04-01", product=hat)
    for i in range(3):
        order(customer(f"runner{i}"), "2026-06-01", product=trainers)
    order(customer("beach"), "2026-06-02", product=sandals)
    for i in range(5):
        order(customer(f"hatter{i}"), "2026-06-03", product=hat)
    newcomer = customer("newcomer")
    order(newcomer, "2026-06-10")  # an order without product lines

    picks = build_features(
        as_of=AS_OF, definition=ChurnDefinition(min_history_days=0), picks=2
    ).picks
    assert picks.loc[fan.pk].tolist() == [trainers.pk, sandals.pk]  # not the boots they own
    assert picks.loc[newcomer.pk].tolist() == [hat.pk, trainers.pk]  # the shop's bestsellers


def lines(*rows):
    customer, product, day = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    return Lines(customer, product, day * 86400)


def picks_for(data: Lines, category, customers, **kw):
    category = np.array(category, dtype=np.int64)
    groups = CategoryGroups.of(data, category)
    return recommend(
        data,
        groups,
        customers=np.array(customers, dtype=np.int64),
        category=category,
        cutoff_seconds=400 * 86400.0,
        **kw,
    )


def test_the_favourite_is_the_category_with_most_lines_and_ties_go_to_the_first_name():
    # products 0, 1 in category 0; products 2, 3 in category 1
    data = lines(
        (1, 0, 390), (1, 2, 391), (1, 2, 392),  # customer 1: category 1 twice
        (2, 0, 390), (2, 3, 391),  # customer 2: one each, a tie
        (3, 1, 395), (4, 1, 395), (5, 3, 395), (6, 3, 395), (7, 3, 395),
    )  # fmt: skip
    picks = picks_for(data, [0, 0, 1, 1], [1, 2], k=2)
    assert picks[0].tolist() == [3, NO_PICK]  # owns 2; 3 is the one left in category 1
    assert picks[1].tolist() == [1, NO_PICK]  # the tie goes to category 0; owns 0


def test_only_the_last_year_makes_a_bestseller_and_newcomers_get_the_shops():
    data = lines((1, 0, 10), (2, 0, 20), (3, 0, 30), (4, 1, 390), (5, 2, 391), (6, 2, 392))
    picks = picks_for(data, [0, 0, 0], [1, 9], k=3)
    assert picks[0].tolist() == [2, 1, NO_PICK]  # product 0 sold only long ago
    assert picks[1].tolist() == [2, 1, NO_PICK]


def test_no_recent_sales_means_no_picks():
    picks = picks_for(lines((1, 0, 10)), [0], [1], k=2)
    assert (picks == NO_PICK).all()
