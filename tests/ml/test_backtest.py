"""``backtest`` refuses data it cannot judge with a sentence that says what to change, and
writes nothing, not even the default churn definition."""

import datetime as dt
import json

import pandas as pd
import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from customers.models import Customer, Order
from tests.ml.history import simulated_shop


def ml_rows() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in apps.get_app_config("ml").get_models()}


def weekly_orders(customers: int, *, start: str, until: list[str]) -> None:
    """Customer i orders every week from ``start`` until ``until[i % len(until)]``."""
    for i in range(customers):
        customer = Customer.objects.create(external_id=f"weekly-{i}")
        days = pd.date_range(start, until[i % len(until)], freq="7D", tz="UTC")
        Order.objects.bulk_create(
            Order(
                external_id=f"weekly-{i}-{k}",
                customer=customer,
                placed_at=day + pd.Timedelta(hours=12),
                status="paid",
                total=40,
            )
            for k, day in enumerate(days)
        )


def refused(*args: str) -> str:
    before = ml_rows()
    with pytest.raises(CommandError) as refusal:
        call_command("backtest", *args)
    assert ml_rows() == before, "a refused backtest must leave nothing behind"
    return str(refusal.value)


def test_an_empty_shop_is_told_to_import_orders(db):
    assert "import the shop's orders" in refused("--as-of", "2026-01-01")


def test_data_ending_before_the_judged_window_names_the_latest_as_of_that_works(db, capsys):
    simulated_shop(customers=600, start="2024-07-01", end="2026-03-15", seed=3)
    ends = Order.objects.order_by("-placed_at").first().placed_at.date()
    message = refused("--as-of", "2026-01-31", "--horizon-days", "90")
    latest = ends + dt.timedelta(days=1) - dt.timedelta(days=90)
    assert f"the data ends on {ends}" in message
    assert f"pick --as-of {latest} or earlier, or a shorter --horizon-days" in message
    # The suggestion is right: a day later is refused, the day itself is judged.
    refused("--as-of", str(latest + dt.timedelta(days=1)), "--horizon-days", "90")
    call_command(
        "backtest", "--as-of", str(latest), "--horizon-days", "90",
        "--algorithms", "recency_baseline", "--json",
    )  # fmt: skip
    assert [r["model"] for r in json.loads(capsys.readouterr().out)] == ["recency_baseline"]
    assert sum(ml_rows().values()) == 0


def test_one_outcome_in_the_judged_window_is_refused(db):
    weekly_orders(12, start="2025-01-01", until=["2026-06-30"])  # nobody ever leaves
    message = refused("--as-of", "2026-03-01", "--horizon-days", "90")
    assert "every customer scored at 2026-03-01 has the same outcome within 90 days" in message
    assert "pick an earlier --as-of or another --horizon-days" in message


def test_one_outcome_in_the_training_cut_offs_is_refused(db):
    # Half stop in February: the judged window has both outcomes, training only one.
    weekly_orders(12, start="2025-01-01", until=["2026-06-30", "2026-02-01"])
    message = refused("--as-of", "2026-02-15", "--horizon-days", "90")
    assert "the training cut-offs up to 2025-11-17 hold only one outcome" in message
    assert "pick a later --as-of or a shorter --horizon-days" in message
