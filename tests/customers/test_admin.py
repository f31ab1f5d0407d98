import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers.models import Customer, Event, Order, Product


@pytest.fixture
def shop(db):
    product = Product.objects.create(sku="SKU-1", name="Tea", category="drinks", price=Decimal("4"))
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"C{i}", email=f"c{i}@example.com") for i in range(30)
    )
    when = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    Order.objects.bulk_create(
        Order(external_id=f"O{i}", customer=c, placed_at=when, total=Decimal("9.50"))
        for i, c in enumerate(customers)
    )
    Event.objects.create(customer=customers[0], kind="login", occurred_at=when, product=product)
    return customers


@pytest.mark.parametrize("model", ["customer", "product", "order", "event"])
def test_every_shop_change_list_opens_for_an_admin(client, admin_user, shop, model):
    client.force_login(admin_user)
    response = client.get(reverse(f"admin:customers_{model}_changelist"))
    assert response.status_code == 200


def test_change_lists_never_count_the_whole_table(client, admin_user, shop):
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:customers_order_changelist"), {"q": "C3"})
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "expected the paginator's bounded count"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_order_list_joins_the_customer_instead_of_one_query_per_row(client, admin_user, shop):
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("admin:customers_order_changelist"))
    customer_lookups = [
        q for q in queries.captured_queries if 'FROM "customers_customer"' in q["sql"]
    ]
    assert len(customer_lookups) <= 1


def test_an_agent_can_look_but_not_edit(client, agent_user, shop):
    client.force_login(agent_user)
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 200
    assert client.get(reverse("admin:customers_customer_add")).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client, shop):
    response = client.get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
