"""Kept apart from test_synthetic.py, whose module-wide shop would count as existing data."""

import pytest
from django.core.management import CommandError, call_command

from customers.models import Event, Order
from customers.synthetic.services import ShopExists, generate_shop
from tests.customers.test_synthetic import END


@pytest.mark.smoke
def test_same_seed_same_shop_and_existing_data_is_protected(db):
    def snapshot():
        return list(
            Order.objects.order_by("external_id").values_list("external_id", "placed_at", "total")
        ), Event.objects.count()

    generate_shop(customers=150, days=120, seed=5, end=END)
    first = snapshot()
    with pytest.raises(ShopExists):
        generate_shop(customers=150, days=120, seed=5, end=END)
    call_command(
        "generate_shop",
        "--customers",
        "150",
        "--days",
        "120",
        "--seed",
        "5",
        "--end",
        "2026-06-30",
        "--if-empty",
    )
    assert snapshot() == first
    generate_shop(customers=150, days=120, seed=5, end=END, replace=True)
    assert snapshot() == first
    generate_shop(customers=150, days=120, seed=6, end=END, replace=True)
    assert snapshot() != first
    with pytest.raises(CommandError, match="--replace"):
        call_command("generate_shop", "--customers", "10", "--end", "2026-06-30")
