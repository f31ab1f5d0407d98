import csv
import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, Event, Order, OrderLine, Product


def write(path, text):
    path.write_text(text.strip() + "\n")
    return str(path)


def counts():
    return (
        Customer.objects.count(),
        Product.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        Event.objects.count(),
    )


@pytest.fixture
def customers_file(tmp_path):
    return write(
        tmp_path / "customers.csv",
        """
external_id,name,email,signup_date,email_consent,country,loyalty_tier
C1,Ann Example,ann@example.com,2025-01-02,yes,DE,gold
C2,Bo Example,bo@example.com,2025-02-03,no,FR,
C3,Cy Example,,2025-03-04,1,NL,silver
""",
    )


@pytest.mark.smoke
def test_customers_import_is_idempotent_and_ignores_extra_columns(db, customers_file, capsys):
    call_command("import_csv", "customers", customers_file)
    out = capsys.readouterr().out
    assert "created 3" in out and "loyalty_tier" in out
    ann = Customer.objects.get(external_id="C1")
    assert ann.email_consent and ann.signup_date == dt.date(2025, 1, 2) and ann.country == "DE"
    assert not Customer.objects.get(external_id="C2").email_consent
    stamp = ann.updated_at
    call_command("import_csv", "customers", customers_file)
    assert "unchanged 3" in capsys.readouterr().out
    ann.refresh_from_db()
    assert ann.updated_at == stamp and Customer.objects.count() == 3


def test_a_bad_row_names_line_and_column_and_writes_nothing(db, tmp_path, customers_file):
    call_command("import_csv", "customers", customers_file)
    before = counts()
    path = write(
        tmp_path / "orders.csv",
        """
order_id,customer,placed_at,sku,quantity,unit_price
O1,C1,2026-01-05T10:00:00Z,,1,10.00
O2,C2,2026-13-45,,1,5.00
O3,C9,2026-01-07,,1,5.00
O4,C3,2026-01-08,,-2,5.00
O5,C3,2026-01-09,,1,abc
""",
    )
    with pytest.raises(CommandError) as error:
        call_command("import_csv", "orders", path)
    message = str(error.value)
    assert "line 3, column 'placed_at': '2026-13-45' is not a date" in message
    assert "line 4, column 'customer': no customer with this external id" in message
    assert "line 5, column 'quantity': '-2' is not a whole number >= 1" in message
    assert "line 6, column 'unit_price': 'abc' is not a number" in message
    assert "nothing was imported" in message
    assert counts() == before


def test_skip_bad_rows_stores_the_good_ones_and_writes_reasons(db, tmp_path, customers_file):
    call_command("import_csv", "customers", customers_file)
    path = write(
        tmp_path / "orders.csv",
        """
order_id,customer,placed_at,sku,quantity,unit_price
O1,C1,2026-01-05,,1,10.00
O1,C1,2026-01-05,,2,2.50
O2,C2,yesterday,,1,5.00
O3,C9,2026-01-07,,1,5.00
""",
    )
    rejects = tmp_path / "rejects.csv"
    call_command("import_csv", "orders", path, "--skip-bad-rows", "--reject-file", str(rejects))
    order = Order.objects.get(external_id="O1")
    assert order.total == Decimal("15.00") and order.lines.count() == 2
    assert Order.objects.count() == 1
    rows = list(csv.DictReader(rejects.open()))
    assert [(r["order_id"], r["line"]) for r in rows] == [("O2", "4"), ("O3", "5")]
    assert "placed_at" in rows[0]["reason"] and "no customer" in rows[1]["reason"]


def test_dry_run_validates_and_writes_nothing(db, customers_file, capsys):
    call_command("import_csv", "customers", customers_file, "--dry-run")
    assert "dry run" in capsys.readouterr().out
    assert Customer.objects.count() == 0


def test_map_delimiter_and_date_format(db, tmp_path):
    path = write(
        tmp_path / "products.csv",
        """
Artikel;Bezeichnung;Gruppe;Preis
A-1;Tee;drinks;4.50
A-2;Kaffee;drinks;7.00
""",
    )
    call_command(
        "import_csv", "products", path, "--delimiter", ";",
        "--map", "Artikel=sku", "--map", "Bezeichnung=name", "--map", "Gruppe=category",
        "--map", "Preis=price",
    )  # fmt: skip
    assert Product.objects.get(sku="A-2").price == Decimal("7.00")
    Customer.objects.create(external_id="C1")
    events = write(
        tmp_path / "events.csv",
        """
customer,kind,occurred_at,value
C1,review,24.12.2025,2
C1,login,25.12.2025,
C1,login,25.12.2025,
""",
    )
    call_command("import_csv", "events", events, "--date-format", "%d.%m.%Y")
    call_command("import_csv", "events", events, "--date-format", "%d.%m.%Y")
    assert Event.objects.filter(kind="login").count() == 2  # duplicates kept, not doubled
    review = Event.objects.get(kind="review")
    assert review.value == 2 and review.occurred_at == dt.datetime(2025, 12, 24, tzinfo=dt.UTC)


def test_unknown_mapping_or_missing_required_column_is_explained(db, tmp_path):
    path = write(tmp_path / "p.csv", "sku,title\nA,Tea\n")
    with pytest.raises(CommandError, match="required field"):
        call_command("import_csv", "products", path)
    with pytest.raises(CommandError, match="unknown field"):
        call_command("import_csv", "products", path, "--map", "title=titel")


def test_a_review_needs_a_rating(db, tmp_path):
    Customer.objects.create(external_id="C1")
    path = write(tmp_path / "e.csv", "customer,kind,occurred_at,value\nC1,review,2026-01-01,9\n")
    with pytest.raises(CommandError, match="line 2, column 'value': a review needs a rating"):
        call_command("import_csv", "events", path)


def test_an_order_with_one_bad_line_is_rejected_whole(db, tmp_path):
    Customer.objects.create(external_id="C1")
    path = write(
        tmp_path / "orders.csv",
        """
order_id,customer,placed_at,quantity,unit_price
O1,C1,2026-01-05,1,10.00
O1,C1,2026-01-05,x,2.50
O2,C1,2026-01-06,1,3.00
""",
    )
    rejects = tmp_path / "r.csv"
    call_command("import_csv", "orders", path, "--skip-bad-rows", "--reject-file", str(rejects))
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O2"]
    rows = {r["line"]: r["reason"] for r in csv.DictReader(rejects.open())}
    assert "another line of this order is invalid" in rows["2"] and "quantity" in rows["3"]


def test_naive_times_are_in_the_shops_time_zone_and_dates_stay_dates(db, tmp_path, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    path = write(tmp_path / "c.csv", "external_id,signup_date\nC1,2025-01-02\n")
    call_command("import_csv", "customers", path)
    assert Customer.objects.get().signup_date == dt.date(2025, 1, 2)
    events = write(
        tmp_path / "e.csv",
        "customer,kind,occurred_at\nC1,login,2026-01-05 09:30\nC1,login,2026-01-05T09:30:00Z\n",
    )
    call_command("import_csv", "events", events)
    times = sorted(Event.objects.values_list("occurred_at", flat=True))
    assert times == [
        dt.datetime(2026, 1, 5, 8, 30, tzinfo=dt.UTC),  # 09:30 in Berlin
        dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC),
    ]
