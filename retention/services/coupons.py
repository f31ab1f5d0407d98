"""Redeeming a coupon at the shop's checkout: idempotent, and strict about who, when and
how much."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from customers.models import OfferType, Order
from retention.models import Coupon

UNKNOWN = "unknown coupon code"
NOT_YOURS = "this coupon belongs to another customer"
EXPIRED = "this coupon expired on {at:%Y-%m-%d}"
USED = "this coupon was already used for another order"
BELOW_MINIMUM = "this coupon needs an order of at least {minimum}"
BAD_TOTAL = "order_total must be a non-negative amount"


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
    *, code: str, customer: str, order: str, order_total: Decimal, now: dt.datetime
) -> Coupon:
    """Redeem ``code`` for the customer's order. Sending the same redemption again returns
    the same coupon; anything else raises :class:`CouponRefused` with a clear reason."""
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
        coupon.redeemed_at, coupon.order_reference = now, order
        coupon.order = Order.objects.filter(external_id=order).first()
        coupon.discount = _discount(coupon, order_total)
        coupon.save(update_fields=["redeemed_at", "order_reference", "order", "discount"])
    return coupon
