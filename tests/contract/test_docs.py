"""The API's documentation: what the schema promises (audit P3-9) and who may read it and
from where Swagger UI comes (audit P3-10)."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(admin_api) -> dict:
    response = admin_api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_bulk_bodies_are_documented_as_lists_of_records(schema):
    for kind in ("customers", "products", "orders", "events"):
        body = schema["paths"][f"/api/v1/{kind}/bulk"]["post"]["requestBody"]
        options = body["content"]["application/json"]["schema"]["anyOf"]
        assert options[0]["type"] == "array" and body["required"]


def test_totals_of_customers_without_orders_are_documented_as_nullable(schema):
    detail = schema["components"]["schemas"]["CustomerDetail"]["properties"]
    assert detail["total_spent"]["nullable"] and detail["last_order_at"]["nullable"]


def test_error_answers_and_receipt_signatures_are_documented(schema):
    detail = schema["paths"]["/api/v1/customers/{external_id}/"]["get"]["responses"]
    assert {"401", "403", "404"} <= set(detail)
    assert "400" in schema["paths"]["/api/v1/orders/"]["get"]["responses"]
    receipts = schema["paths"]["/api/v1/outbox/receipts"]["post"]["parameters"]
    assert {p["name"] for p in receipts if p["in"] == "header"} == {
        "X-Retention-Timestamp",
        "X-Retention-Signature",
    }


def test_anonymous_callers_get_neither_schema_nor_docs(client):
    assert client.get("/api/v1/schema/").status_code in (401, 403)
    assert client.get("/api/v1/docs/").status_code in (401, 403)


def test_the_docs_load_swagger_ui_from_our_own_static_files(client, agent_user):
    client.force_login(agent_user)
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr.net" not in html and "/static/drf_spectacular_sidecar/" in html
