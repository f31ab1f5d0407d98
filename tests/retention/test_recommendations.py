import datetime as dt

import pytest

from customers.models import Product
from retention.selectors import recommended_skus
from tests.ml.history import order
from tests.retention.factories import customer

pytestmark = pytest.mark.django_db


@pytest.mark.smoke
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

    picks = recommended_skus([fan.pk, newcomer.pk], as_of=dt.date(2026, 6, 30), k=2)
    assert picks[fan.pk] == ["TRAIN", "SAND"]  # shoes, by buyers; not the boots they own
    assert picks[newcomer.pk] == ["HAT", "TRAIN"]  # no history: the shop's bestsellers
