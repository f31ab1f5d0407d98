import datetime as dt
import json
import time
from decimal import Decimal

import pytest

from retention.channels.webhook import signature
from retention.models import AuditEntry, Coupon, _coupon_code
from retention.services.coupons import (
    BELOW_MINIMUM,
    NOT_YOURS,
    ORDER_HAS_COUPON,
    OTHER_CUSTOMERS_ORDER,
    UNKNOWN,
    USED,
)
from tests.factories import campaign, customer, outbox_sms
from tests.ml.history import order

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupon():
    return Coupon.objects.create(
        customer=customer("anna"),
        offer_type="fixed_amount",
        value=Decimal("10"),
        min_order_value=Decimal("40"),
        expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )


def redeem(api, **fields):
    return api.post("/api/v1/coupons/redeem", fields, format="json")


def test_redeeming_is_idempotent_and_links_the_order(admin_api, coupon):
    placed = order(coupon.customer, "2026-07-02", "55")
    first = redeem(
        admin_api,
        code=coupon.code.lower(),
        customer="anna",
        order=placed.external_id,
        order_total="55.00",
    )
    assert first.status_code == 200 and first.json()["discount"] == "10.00"
    again = redeem(
        admin_api, code=coupon.code, customer="anna", order=placed.external_id, order_total="55.00"
    )
    assert again.status_code == 200 and again.json() == first.json()
    coupon.refresh_from_db()
    assert coupon.order == placed and coupon.discount == 10


@pytest.mark.smoke
def test_bad_coupon_codes_and_misuse_are_refused_clearly(admin_api, coupon):
    customer("bob")
    cases = [
        ({"code": "NOPE0000NOPE0000", "customer": "anna"}, 404, UNKNOWN),
        ({"code": coupon.code, "customer": "bob"}, 400, NOT_YOURS),
        (
            {"code": coupon.code, "customer": "anna", "order_total": "39.99"},
            400,
            BELOW_MINIMUM.format(minimum="40.00"),
        ),
    ]
    for fields, code, detail in cases:
        response = redeem(admin_api, **{"order": "o-1", "order_total": "50", **fields})
        assert (response.status_code, response.json()["detail"]) == (code, detail)
    assert (
        redeem(
            admin_api, code=coupon.code, customer="anna", order="o-1", order_total="50"
        ).status_code
        == 200
    )
    used = redeem(admin_api, code=coupon.code, customer="anna", order="o-2", order_total="50")
    assert (used.status_code, used.json()["detail"]) == (409, USED)
    coupon.expires_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    coupon.redeemed_at = None
    coupon.save()
    expired = redeem(admin_api, code=coupon.code, customer="anna", order="o-3", order_total="50")
    assert expired.status_code == 400 and "expired on 2020-01-01" in expired.json()["detail"]


def test_it_refuses_a_second_coupon_for_an_order_that_has_one_naming_the_order(admin_api, coupon):
    second = Coupon.objects.create(
        customer=coupon.customer,
        offer_type="fixed_amount",
        value=Decimal("5"),
        expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )
    placed = order(coupon.customer, "2026-07-02", "55")
    first = redeem(
        admin_api, code=coupon.code, customer="anna", order=placed.external_id, order_total="55"
    )
    assert first.status_code == 200
    again = redeem(
        admin_api, code=second.code, customer="anna", order=placed.external_id, order_total="55"
    )
    assert again.status_code == 409
    assert again.json()["detail"] == ORDER_HAS_COUPON.format(order=placed.external_id)
    second.refresh_from_db()
    assert second.redeemed_at is None and second.order is None


def test_it_refuses_a_coupon_for_another_customers_order_naming_both(admin_api, coupon):
    bobs = order(customer("bob"), "2026-07-02", "55")
    response = redeem(
        admin_api, code=coupon.code, customer="anna", order=bobs.external_id, order_total="55"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == OTHER_CUSTOMERS_ORDER.format(
        order=bobs.external_id, owner="bob", customer="anna"
    )
    coupon.refresh_from_db()
    assert coupon.redeemed_at is None and coupon.order is None


def test_a_redemption_is_audited_once_with_who_redeemed_it(admin_api, admin_user, coupon):
    placed = order(coupon.customer, "2026-07-02", "55")
    for _ in range(2):  # the replay is the same redemption, not a second one
        response = redeem(
            admin_api, code=coupon.code, customer="anna", order=placed.external_id, order_total="55"
        )
        assert response.status_code == 200
    entry = AuditEntry.objects.get(action="coupon_redeemed")
    assert (entry.actor, entry.via) == (admin_user, "api")
    assert entry.detail == {"coupon": coupon.pk, "order": placed.external_id, "discount": "10.00"}


def test_coupon_codes_carry_sixty_four_random_bits():
    codes = [_coupon_code() for _ in range(400)]
    assert all(len(c) == 16 and int(c, 16) >= 0 for c in codes)
    # Every one of the 16 hex digits varies (a UUID's version digit would not).
    assert all(len({c[i] for c in codes}) > 8 for i in range(16))


def test_agents_cannot_redeem_coupons(agent_api, coupon):
    response = redeem(agent_api, code=coupon.code, customer="anna", order="o", order_total="50")
    assert response.status_code == 403


def test_delivery_receipts_need_a_fresh_signature_and_mark_delivery(client, settings):
    settings.RECEIPTS_SECRET = "receipt-secret"
    people = customer("zoe")
    message = outbox_sms(
        campaign(),
        people,
        intervention_state="sent",
        at=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        state="sent",
        provider_message_id="sms-7",
    )
    intervention = message.intervention
    body = json.dumps(
        [
            {"reference": "sms-7", "status": "delivered"},
            {"reference": "sms-unknown", "status": "delivered"},
        ]
    ).encode()

    def post(body, stamp=None, secret="receipt-secret"):
        stamp = stamp or str(int(time.time()))
        return client.post(
            "/api/v1/outbox/receipts",
            body,
            content_type="application/json",
            HTTP_X_RETENTION_TIMESTAMP=stamp,
            HTTP_X_RETENTION_SIGNATURE=signature(secret, stamp, body),
        )

    assert post(body, secret="wrong").status_code == 403
    assert post(body, stamp=str(int(time.time()) - 3600)).status_code == 403
    answer = post(body)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0]["state"] == "delivered" and "no message" in results[1]["error"]
    message.refresh_from_db()
    intervention.refresh_from_db()
    assert message.state == "delivered" and intervention.state == "delivered"
    assert intervention.audit.filter(action="delivered", actor_kind="provider").exists()
