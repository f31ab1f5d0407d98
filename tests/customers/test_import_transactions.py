from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, Order, OrderLine

LOG = """
client;day;paid;items
K-2;2026-03-01;19.90;1
K-1;2026-02-01;0;1
K-1;2026-01-15;35.00;2
K-1;2026-01-15;35.00;2
K-3;2025-12-24;120.50;3
"""


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "transactions.csv"
    path.write_text(LOG.strip() + "\n")
    return str(path)


def run(log, *extra):
    call_command(
        "import_transactions", log, "--delimiter", ";", "--customer-col", "client",
        "--date-col", "day", "--amount-col", "paid", "--quantity-col", "items", *extra,
    )  # fmt: skip


@pytest.mark.smoke
def test_a_transaction_log_becomes_customers_and_one_order_per_line(db, log, capsys):
    run(log)
    assert "customers created 3" in capsys.readouterr().out
    assert Customer.objects.count() == 3
    k1 = Order.objects.filter(customer__external_id="K-1")
    # Duplicate lines are two purchases; a zero amount is a purchase too.
    assert sorted(k1.values_list("total", flat=True)) == [0, Decimal("35.00"), Decimal("35.00")]
    assert Order.objects.count() == 5
    assert set(Order.objects.values_list("status", flat=True)) == {"paid"}
    line = OrderLine.objects.get(order__customer__external_id="K-3")
    assert line.quantity == 3 and line.unit_price == Decimal("40.17")


def test_reimporting_the_same_log_changes_nothing(db, log, capsys):
    run(log)
    ids = sorted(Order.objects.values_list("external_id", flat=True))
    run(log)
    assert "unchanged 5" in capsys.readouterr().out.splitlines()[-1]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ids


def test_bad_amounts_are_named_and_nothing_is_written(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("client,day,paid\nK-1,2026-01-01,12.00\nK-2,2026-01-02,-5\n")
    with pytest.raises(CommandError, match=r"line 3, column 'paid': '-5' is not a number >= 0"):
        call_command(
            "import_transactions", str(path), "--customer-col", "client", "--date-col", "day",
            "--amount-col", "paid",
        )  # fmt: skip
    assert Customer.objects.count() == 0 and Order.objects.count() == 0
