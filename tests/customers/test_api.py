import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from customers.models import Customer, Event, Order, OrderLine, Product

CUSTOMERS = [
    {"external_id": "C1", "name": "Ann", "email": "ann@example.com", "email_consent": True},
    {"external_id": "C2", "name": "Bo", "country": "FR", "signup_date": "2025-02-03"},
]
ORDERS = [
    {
        "external_id": "O1",
        "customer": "C1",
        "placed_at": "2026-01-05T10:00:00Z",
        "lines": [
            {"sku": "TEA", "quantity": 2, "unit_price": "4.50"},
            {"sku": "MUG", "quantity": 1, "unit_price": 12},
        ],
    },
    {"external_id": "O2", "customer": "C2", "placed_at": "2026-01-06", "status": "refunded",
     "lines": [{"quantity": 1, "unit_price": 3}]},
]  # fmt: skip


def post(client, kind, records, atomic=False):
    url = reverse(f"{kind}-bulk") + ("?atomic=true" if atomic else "")
    return client.post(url, records, format="json")


@pytest.fixture
def shop(admin_api):
    assert post(admin_api, "customers", CUSTOMERS).status_code == 200
    Product.objects.create(sku="TEA", name="Tea", category="drinks", price=4.5)
    return admin_api


@pytest.mark.smoke
def test_the_same_batch_twice_changes_nothing(shop):
    first = post(shop, "orders", ORDERS).json()
    assert first == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    rows = list(OrderLine.objects.order_by("id").values_list("id", "amount", "product_id"))
    again = post(shop, "orders", ORDERS).json()
    assert again == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
    assert list(OrderLine.objects.order_by("id").values_list("id", "amount", "product_id")) == rows
    o1 = Order.objects.get(external_id="O1")
    assert str(o1.total) == "21.00" and o1.lines.get(position=1).product.sku == "TEA"
    assert post(shop, "customers", CUSTOMERS).json()["unchanged"] == 2


def test_resending_an_order_with_fewer_lines_replaces_them(shop):
    post(shop, "orders", ORDERS)
    changed = [ORDERS[0] | {"lines": [{"sku": "TEA", "quantity": 3, "unit_price": "4.50"}]}]
    assert post(shop, "orders", changed).json()["updated"] == 1
    o1 = Order.objects.get(external_id="O1")
    assert [(line.quantity, str(line.amount)) for line in o1.lines.all()] == [(3, "13.50")]
    assert str(o1.total) == "13.50"


def test_bad_records_are_reported_and_good_ones_stored(shop):
    batch = [
        ORDERS[0],
        {"external_id": "O3", "customer": "C1", "placed_at": "not a date",
         "lines": [{"quantity": 1, "unit_price": 1}]},
        {"external_id": "O4", "customer": "NOPE", "placed_at": "2026-01-07",
         "lines": [{"quantity": 1, "unit_price": 1}]},
        {"external_id": "O5", "customer": "C1", "placed_at": "2026-01-07",
         "lines": [{"quantity": -1, "unit_price": 1}]},
        {"external_id": "O1", "customer": "C2", "placed_at": "2026-01-07",
         "lines": [{"quantity": 1, "unit_price": 1}]},
        {"external_id": "O6", "customer": "C1", "placed_at": "2026-01-07",
         "lines": [{"quantity": 1, "unit_price": "abc"}]},
        {"external_id": "O7", "customer": ["C1"], "placed_at": "2026-01-07",
         "lines": [{"quantity": 1, "unit_price": 1}]},
    ]  # fmt: skip
    response = post(shop, "orders", batch)
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 1
    errors = {(e["index"], e["field"]): e["message"] for e in body["errors"]}
    assert "is not a date" in errors[(1, "placed_at")]
    assert errors[(2, "customer")] == "no customer with this external id"
    assert "whole number" in errors[(3, "lines[0].quantity")]
    assert "duplicate external_id" in errors[(4, "external_id")]
    assert "is not a number" in errors[(5, "lines[0].unit_price")]
    assert "single value" in errors[(6, "customer")]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O1"]


def test_atomic_batches_store_nothing_when_one_record_is_bad(shop):
    batch = [ORDERS[0], ORDERS[1] | {"customer": "NOPE"}]
    response = post(shop, "orders", batch, atomic=True)
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 1
    assert Order.objects.count() == 0
    assert post(shop, "orders", ORDERS, atomic=True).status_code == 200


def test_events_and_reviews(shop):
    events = [
        {"customer": "C1", "kind": "review", "occurred_at": "2026-01-09", "value": 2},
        {"customer": "C1", "kind": "login", "occurred_at": "2026-01-09T08:00:00Z"},
        {"customer": "C1", "kind": "review", "occurred_at": "2026-01-09", "value": 7},
        {"customer": "C1", "kind": "teleport", "occurred_at": "2026-01-09"},
    ]
    body = post(shop, "events", events).json()
    assert body["created"] == 2
    assert {e["index"] for e in body["errors"]} == {2, 3}
    assert post(shop, "events", events[:2]).json()["unchanged"] == 2  # no ids, still idempotent
    assert Event.objects.count() == 2


def test_a_batch_of_ten_thousand_customers(shop):
    batch = [{"external_id": f"K{i}", "email": f"k{i}@example.com"} for i in range(10_000)]
    assert post(shop, "customers", batch).json()["created"] == 10_000
    assert Customer.objects.count() == 10_002
    too_many = [*batch, {"external_id": "one-more"}]
    response = post(shop, "customers", too_many)
    assert response.status_code == 400 and "10000" in response.json()["detail"]


def test_writes_need_the_admin_role(db, agent_api):
    assert post(APIClient(), "customers", CUSTOMERS).status_code == 401
    assert post(agent_api, "customers", CUSTOMERS).status_code == 403
    assert Customer.objects.count() == 0


def test_reads_for_agents_with_filters_and_detail(shop, agent_api, client):
    post(shop, "orders", ORDERS)
    assert client.get(reverse("customer-list")).status_code == 401
    listing = agent_api.get(reverse("customer-list"), {"country": "FR"}).json()
    assert [c["external_id"] for c in listing["results"]] == ["C2"]
    found = agent_api.get(reverse("customer-list"), {"q": "ann@"}).json()["results"]
    assert [c["external_id"] for c in found] == ["C1"]
    detail = agent_api.get(reverse("customer-detail", args=["C1"])).json()
    assert detail["order_count"] == 1 and detail["total_spent"] == "21.00"
    orders = agent_api.get(reverse("customer-orders", args=["C1"])).json()["results"]
    assert [o["external_id"] for o in orders] == ["O1"] and len(orders[0]["lines"]) == 2
    refunded = agent_api.get(reverse("order-list"), {"status": "refunded"}).json()["results"]
    assert [o["external_id"] for o in refunded] == ["O2"]


def test_the_schema_describes_the_api_without_warnings(admin_api, tmp_path):
    response = admin_api.get(reverse("api-schema"))
    assert response.status_code == 200
    assert b"/api/v1/orders/bulk" in response.content
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s"))
