"""Hand-made shop histories for feature, label and scoring tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from customers.models import Customer, Event, Order, OrderLine, Product


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=dt.UTC)


def order(
    customer: Customer,
    day: str,
    total: str = "50",
    *,
    status: str = "paid",
    hour: int = 12,
    product: Product | None = None,
) -> Order:
    placed = Order.objects.create(
        external_id=f"{customer.external_id}-{day}-{hour}-{Order.objects.count()}",
        customer=customer,
        placed_at=at(day, hour),
        status=status,
        total=Decimal(total),
    )
    if product is not None:
        OrderLine.objects.create(
            order=placed,
            position=1,
            product=product,
            sku=product.sku,
            quantity=1,
            unit_price=Decimal(total),
            amount=Decimal(total),
        )
    return placed


def event(customer: Customer, kind: str, day: str, value: float | None = None) -> Event:
    return Event.objects.create(customer=customer, kind=kind, occurred_at=at(day), value=value)
