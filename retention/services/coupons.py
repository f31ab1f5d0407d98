"""Redeeming a coupon at the shop's checkout: idempotent, strict about who, when, which
order and how much, and audited."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction

from customers.models import OfferType, Order
from retention.models import Coupon
from retention.services.audit import Action, Actor, audit_write

UNKNOWN = "unknown coupon code"
NOT_YOURS = "this coupon belongs to another customer"
EXPIRED = "this coupon expired on {at:%Y-%m-%d}"
USED = "this coupon was already used for another order"
BELOW_MINIMUM = "this coupon needs an order of at least {minimum}"
BAD_TOTAL = "order_total must be a non-negative amount"
ORDER_HAS_COUPON = "order {order} already has a coupon"
OTHER_CUSTOMERS_ORDER = "order {order} belongs to customer {owner}, not to {customer}"


class CouponRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _discount(coupon: Coupon, total: Decimal) -> Decimal:
    if coupon.offer_type == OfferType.PERCENT_OFF:
        amount = total * coupon.value / 100
    elif coupon.offer_type == OfferType.FIXED_AMOUNT:
        amount = min(coupon.value, total)
    else:  # free shipping and loyalty points: what the offer costs the shop per use
        offer = coupon.intervention.offer if coupon.intervention_id else None
        amount = (offer.unit_cost * max(coupon.value, 1)) if offer else Decimal(0)
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def coupon_redeem(
    *,
    code: str,
    customer: str,
    order: str,
    order_total: Decimal,
    now: dt.datetime,
    actor: Actor,
) -> Coupon:
    """Redeem ``code`` for the customer's order. Sending the same redemption again returns
    the same coupon; anything else raises :class:`CouponRefused` with a clear reason.

    An order we know must be the coupon's customer's and can carry one coupon; an order
    not imported yet is kept by its reference alone.
    """
    if order_total < 0:
        raise CouponRefused("bad_total", BAD_TOTAL)
    with transaction.atomic():
        coupon = (
            Coupon.objects.select_for_update(of=("self",))
            .select_related("customer", "intervention__offer")
            .filter(code=code.strip().upper())
            .first()
        )
        if coupon is None:
            raise CouponRefused("unknown", UNKNOWN)
        if coupon.customer.external_id != customer:
            raise CouponRefused("not_yours", NOT_YOURS)
        if coupon.redeemed_at is not None:
            if coupon.order_reference == order:
                return coupon
            raise CouponRefused("used", USED)
        if now > coupon.expires_at:
            raise CouponRefused("expired", EXPIRED.format(at=coupon.expires_at))
        if order_total < coupon.min_order_value:
            raise CouponRefused(
                "below_minimum", BELOW_MINIMUM.format(minimum=coupon.min_order_value)
            )
        coupon.order = _order_for(coupon, order)
        coupon.redeemed_at, coupon.order_reference = now, order
        coupon.discount = _discount(coupon, order_total)
        try:
            with transaction.atomic():
                coupon.save(update_fields=["redeemed_at", "order_reference", "order", "discount"])
        except IntegrityError:  # another coupon took the order since _order_for looked
            raise CouponRefused("order_has_coupon", ORDER_HAS_COUPON.format(order=order)) from None
        audit_write(
            actor=actor,
            action=Action.COUPON_REDEEMED,
            at=now,
            intervention_id=coupon.intervention_id,
            detail={"coupon": coupon.pk, "order": order, "discount": str(coupon.discount)},
        )
    return coupon


def _order_for(coupon: Coupon, reference: str) -> Order | None:
    found = Order.objects.select_related("customer").filter(external_id=reference).first()
    if found is None:
        return None
    if found.customer_id != coupon.customer_id:
        raise CouponRefused(
            "other_customers_order",
            OTHER_CUSTOMERS_ORDER.format(
                order=reference,
                owner=found.customer.external_id,
                customer=coupon.customer.external_id,
            ),
        )
    if Coupon.objects.filter(order=found).exists():
        raise CouponRefused("order_has_coupon", ORDER_HAS_COUPON.format(order=reference))
    return found
