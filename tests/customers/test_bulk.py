import datetime as dt

import pandas as pd
import pytest

from core.bulk import copy_frame, copy_rows, reserve_ids
from customers.models import Customer, Event, Order


@pytest.mark.smoke
def test_copy_rows_keeps_empty_strings_and_nulls_apart(db):
    written = copy_rows(
        Customer,
        [
            "external_id",
            "name",
            "email",
            "phone",
            "country",
            "time_zone",
            "signup_date",
            "email_consent",
            "sms_consent",
            "webhook_consent",
            "marketing_opt_out",
            "attributes",
            "created_at",
            "updated_at",
        ],
        [
            (
                "A",
                "",
                "",
                "",
                "",
                "UTC",
                None,
                True,
                False,
                False,
                False,
                "{}",
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            ),
            (
                "B",
                "Bea",
                "b@example.com",
                "+49",
                "DE",
                "Europe/Berlin",
                dt.date(2025, 3, 1),
                False,
                True,
                False,
                False,
                '{"tier": "gold"}',
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            ),
        ],
    )
    assert written == 2
    a, b = Customer.objects.order_by("external_id")
    assert a.name == "" and a.signup_date is None and a.email_consent
    assert b.signup_date == dt.date(2025, 3, 1) and b.attributes == {"tier": "gold"}


@pytest.mark.smoke
def test_reserved_ids_let_children_reference_parents_written_in_the_same_pass(db):
    customer = Customer.objects.create(external_id="C1")
    ids = reserve_ids(Order, 3)
    assert len(set(ids)) == 3
    when = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    copy_rows(
        Order,
        [
            "id",
            "external_id",
            "customer_id",
            "placed_at",
            "status",
            "total",
            "currency",
            "sales_channel",
        ],
        [(i, f"O{i}", customer.id, when, "paid", 10, "EUR", "web") for i in ids],
    )
    # A later ordinary insert must not collide with the reserved block.
    later = Order.objects.create(external_id="late", customer=customer, placed_at=when, total=1)
    assert later.id not in ids
    assert Order.objects.count() == 4


@pytest.mark.smoke
def test_copy_frame_writes_columns_with_nulls_empty_strings_and_quotes(db):
    customer = Customer.objects.create(external_id="C1")
    when = pd.Timestamp("2026-02-01 10:30", tz="UTC")
    frame = pd.DataFrame(
        {
            "customer_id": [customer.id] * 3,
            "kind": ["review", "visit", "login"],
            "occurred_at": [when, when + pd.Timedelta(hours=1), when + pd.Timedelta(days=1)],
            "value": [4.0, None, None],
            "properties": ['{"text": "good, \\"really\\""}', "{}", "{}"],
            "external_id": [None, "", None],
        }
    )
    # An empty external id would collide with nothing only if it stays NULL-distinct: use one.
    frame.loc[1, "external_id"] = "E-2"

    assert copy_frame(Event, frame) == 3

    review, visit, login = Event.objects.order_by("occurred_at")
    assert review.value == 4 and review.external_id is None
    assert review.properties == {"text": 'good, "really"'}
    assert visit.value is None and visit.external_id == "E-2"
    assert login.occurred_at == dt.datetime(2026, 2, 2, 10, 30, tzinfo=dt.UTC)


def _foreign_keys(table: str) -> list[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = to_regclass(%s) ORDER BY conname",
            [table],
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bulk_load_gets_its_foreign_keys_back_and_still_refuses_orphans():
    from django.db import IntegrityError, transaction

    from core.bulk import foreign_keys_checked_in_bulk
    from customers.models import OrderLine

    before = _foreign_keys("customers_orderline")
    assert before, "OrderLine should reference Order and Product"
    columns = ["order_id", "position", "sku", "quantity", "unit_price", "amount"]

    customer = Customer.objects.create(external_id="C1")
    when = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    with transaction.atomic():
        # A deletion queues a check on the lines' foreign key; it must not get in the way.
        Order.objects.create(external_id="O1", customer=customer, placed_at=when, total=1).delete()
        with foreign_keys_checked_in_bulk(OrderLine, rows=50_000):
            assert _foreign_keys("customers_orderline") == []  # checked in one join, not per row
    assert _foreign_keys("customers_orderline") == before

    with (
        pytest.raises(IntegrityError, match="order_id"),
        transaction.atomic(),
        foreign_keys_checked_in_bulk(OrderLine, rows=50_000),
    ):
        copy_rows(OrderLine, columns, [(987654321, 1, "", 1, 1, 1)])
    assert _foreign_keys("customers_orderline") == before
    assert not OrderLine.objects.exists()


def _indexes(table: str) -> list[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table]
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bulk_load_can_build_its_indexes_at_the_end_and_still_refuses_duplicates():
    from django.db import IntegrityError, transaction

    from core.bulk import foreign_keys_checked_in_bulk

    indexes, keys = _indexes("customers_order"), _foreign_keys("customers_order")
    customer = Customer.objects.create(external_id="C1")
    when = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    columns = ["external_id", "customer_id", "placed_at", "status", "total", "currency",
               "sales_channel"]  # fmt: skip
    with (
        transaction.atomic(),
        foreign_keys_checked_in_bulk(Order, rows=50_000, rebuild_indexes=True),
    ):
        assert [name for name, _ in _indexes("customers_order")] == ["customers_order_pkey"]
        copy_rows(Order, columns, [("O1", customer.id, when, "paid", 1, "EUR", "web")])
    assert _indexes("customers_order") == indexes
    assert _foreign_keys("customers_order") == keys

    with (
        pytest.raises(IntegrityError, match="external_id"),
        transaction.atomic(),
        foreign_keys_checked_in_bulk(Order, rows=50_000, rebuild_indexes=True),
    ):
        copy_rows(Order, columns, [("O2", customer.id, when, "paid", 1, "EUR", "web")] * 2)
    assert _indexes("customers_order") == indexes
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_small_load_keeps_the_row_by_row_checks():
    from django.db import transaction

    from core.bulk import foreign_keys_checked_in_bulk
    from customers.models import OrderLine

    before = _foreign_keys("customers_orderline")
    with transaction.atomic(), foreign_keys_checked_in_bulk(OrderLine, rows=10):
        assert _foreign_keys("customers_orderline") == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bulk_load_settles_for_row_by_row_checks_when_another_session_holds_a_table():
    import psycopg
    from django.db import connection, transaction

    from core.bulk import foreign_keys_checked_in_bulk
    from customers.models import OrderLine

    before = _foreign_keys("customers_orderline")
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
        dbname=settings["NAME"], autocommit=False,
    ) as agent:  # fmt: skip
        agent.execute("SELECT count(*) FROM customers_order")  # holds a lock till it ends
        with transaction.atomic(), foreign_keys_checked_in_bulk(OrderLine, rows=50_000):
            assert _foreign_keys("customers_orderline") == before
        agent.rollback()
    assert _foreign_keys("customers_orderline") == before
