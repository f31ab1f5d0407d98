"""Values the database cannot hold, and other bad input, on the bulk API: each bad record is
reported by index and field, its batch-mates are stored, and later reads keep working
(audit P1-3, P3-2, P3-3, P3-4, P3-5)."""

import pytest
from django.urls import reverse

from customers.models import Customer, Order, OrderLine

ORDER = {"external_id": "O-OK", "customer": "C000001", "placed_at": "2026-11-20T14:03:00Z",
         "lines": [{"quantity": 1, "unit_price": "5"}]}  # fmt: skip


def post(client, kind, records, atomic=False):
    url = reverse(f"{kind}-bulk") + ("?atomic=true" if atomic else "")
    return client.post(url, records, format="json")


@pytest.fixture
def shop(admin_api):
    assert post(admin_api, "customers", [{"external_id": "C000001"}]).status_code == 200
    return admin_api


def bad_order(lines):
    return {**ORDER, "external_id": "O-AMT", "lines": lines}


def errors_of(response):
    return {(e["index"], e["field"]): e["message"] for e in response.json()["errors"]}


def reads_work(client):
    for url in ("/api/v1/customers/C000001/", "/api/v1/customers/C000001/orders/",
                "/api/v1/orders/"):  # fmt: skip
        assert client.get(url).status_code == 200, url


OVERSIZED = {
    "a line amount over NUMERIC(12,2)": (
        [{"quantity": 2_000_000_000, "unit_price": "9999999999"}],
        "lines[0]",
    ),
    "an order total over NUMERIC(12,2)": (
        [{"quantity": 1, "unit_price": "9000000000"}, {"quantity": 1, "unit_price": "9000000000"}],
        "external_id",
    ),
    "a quantity over the integer column": (
        [{"quantity": 3_000_000_000, "unit_price": "1"}],
        "lines[0].quantity",
    ),
    "more lines than an order may have": (
        [{"quantity": 1, "unit_price": "1"}] * 40_000,
        "external_id",
    ),
}


@pytest.mark.parametrize("lines,field", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_it_refuses_an_order_the_database_cannot_hold_and_keeps_its_batch_mates(shop, lines, field):
    response = post(shop, "orders", [bad_order(lines), ORDER])
    assert response.status_code == 200
    errors = errors_of(response)
    assert {index for index, _ in errors} == {0}
    assert any(name.startswith(field) for _, name in errors), errors
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O-OK"]
    assert OrderLine.objects.count() == 1
    reads_work(shop)


@pytest.mark.smoke
@pytest.mark.parametrize("lines,field", list(OVERSIZED.values())[:3], ids=list(OVERSIZED)[:3])
def test_oversized_orders_are_refused_on_the_default_database_too(shop, lines, field):
    response = post(shop, "orders", [bad_order(lines), ORDER])
    assert {index for index, _ in errors_of(response)} == {0}
    assert Order.objects.get().external_id == "O-OK"
    reads_work(shop)


@pytest.mark.smoke
@pytest.mark.parametrize("atomic", [False, True])
def test_it_refuses_nul_bytes_naming_the_record_and_field(shop, atomic):
    response = post(shop, "customers", [{"external_id": "X-1"}, {"external_id": "X-2",
                                                                   "name": "a\u0000b"}],
                    atomic=atomic)  # fmt: skip
    errors = errors_of(response)
    assert list(errors) == [(1, "name")] and "NUL" in errors[(1, "name")]
    stored = set(Customer.objects.values_list("external_id", flat=True))
    assert stored == ({"C000001"} if atomic else {"C000001", "X-1"})
    assert response.status_code == (400 if atomic else 200)


def test_it_refuses_nul_bytes_in_order_lines_and_ids(shop):
    batch = [
        {**ORDER, "external_id": "O-\u0000"},
        {**ORDER, "external_id": "O-2", "lines": [{"sku": "\u0000", "quantity": 1,
                                                   "unit_price": 1}]},
        {**ORDER, "external_id": "O-3"},
    ]  # fmt: skip
    errors = errors_of(post(shop, "orders", batch))
    assert set(errors) == {(0, "external_id"), (1, "lines[0].sku")}
    assert Order.objects.get().external_id == "O-3"


@pytest.mark.smoke
@pytest.mark.parametrize("atomic", [False, True])
def test_ids_that_differ_only_by_surrounding_spaces_are_duplicates(shop, atomic):
    response = post(shop, "customers", [{"external_id": "X-WS"}, {"external_id": " X-WS "}],
                    atomic=atomic)  # fmt: skip
    assert "duplicate external_id" in errors_of(response)[(1, "external_id")]
    orders = [{**ORDER, "external_id": "X-OWS"}, {**ORDER, "external_id": " X-OWS"}]
    response = post(shop, "orders", orders, atomic=atomic)
    assert "duplicate external_id" in errors_of(response)[(1, "external_id")]
    if not atomic:
        order = Order.objects.get(external_id="X-OWS")
        assert order.lines.count() == 1 and str(order.total) == "5.00"


@pytest.mark.smoke
def test_it_validates_time_zones_emails_and_ids_that_must_fit_in_a_url(shop):
    batch = [
        {"external_id": "T-1", "time_zone": "Mars/Olympus"},
        {"external_id": "T-2", "email": "not an email"},
        {"external_id": "A/B"},
        {"external_id": "T-3", "time_zone": "Europe/Berlin", "email": "t3@example.com"},
        {"external_id": "T-4", "email": "t4@[127.0.0.1]"},
    ]
    response = post(shop, "customers", batch)
    errors = errors_of(response)
    assert set(errors) == {(0, "time_zone"), (1, "email"), (2, "external_id")}
    assert "/" in errors[(2, "external_id")]
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"C000001", "T-3", "T-4"}


@pytest.mark.parametrize("placed_at", ["1900-01-01", "2200-01-01T00:00:00Z"])
def test_it_refuses_orders_dated_outside_a_sane_range(shop, placed_at):
    response = post(shop, "orders", [{**ORDER, "placed_at": placed_at}])
    assert (0, "placed_at") in errors_of(response)
    assert not Order.objects.exists()


def test_a_signup_date_outside_a_sane_range_is_refused(shop):
    response = post(shop, "customers", [{"external_id": "S-1", "signup_date": "1800-02-03"}])
    assert (0, "signup_date") in errors_of(response)


@pytest.mark.smoke
def test_deeply_nested_json_is_a_bad_request(shop):
    body = "[" * 100_000 + "]" * 100_000
    response = shop.post(reverse("customers-bulk"), body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("url", ["/api/v1/orders/", "/api/v1/customers/C000001/orders/"])
def test_a_time_zone_offset_no_database_can_hold_is_a_bad_request_naming_the_filter(shop, url):
    response = shop.get(url, {"placed_after": "2026-01-01T00:00:00+16:00"})
    assert response.status_code == 400
    assert "placed_after" in response.json()
    assert shop.get(url, {"placed_after": "2026-01-01T00:00:00+14:00"}).status_code == 200


@pytest.mark.parametrize("atomic", [False, True])
def test_records_that_all_lack_the_id_are_refused_per_record(shop, atomic):
    response = post(shop, "customers", [{"name": "no id"}], atomic=atomic)
    assert response.status_code == 400 if atomic else 200
    assert "required" in errors_of(response)[(0, "external_id")]
    assert Customer.objects.count() == 1


def test_values_of_another_json_type_than_documented_are_refused(shop):
    batch = [{"external_id": False}, {"external_id": "B-1", "email_consent": "yes"},
             {"external_id": "B-2", "name": 7}]  # fmt: skip
    errors = errors_of(post(shop, "customers", batch))
    assert set(errors) == {(0, "external_id"), (2, "name")}
    assert "expected string, got boolean" in errors[(0, "external_id")]
    assert Customer.objects.get(external_id="B-1").email_consent
