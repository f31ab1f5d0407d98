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


def simulated_shop(*, customers: int, start: str, end: str, seed: int = 0) -> None:
    """A small buy-till-you-die shop with logins that stop when a customer leaves: enough
    signal for models to learn, written in bulk. The real generator lives in
    ``customers.synthetic``; this one keeps ml tests independent of its tuning."""
    import numpy as np
    import pandas as pd

    from core.bulk import copy_frame, reserve_ids

    rng = np.random.default_rng(seed)
    first, last = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    span = (last - first).days
    ids = reserve_ids(Customer, customers)
    copy_frame(
        Customer,
        pd.DataFrame(
            {
                "id": ids,
                "external_id": [f"sim-{i}" for i in ids],
                "name": "",
                "email": "",
                "phone": "",
                "country": "DE",
                "time_zone": "UTC",
                "email_consent": True,
                "sms_consent": False,
                "webhook_consent": False,
                "marketing_opt_out": False,
                "attributes": "{}",
                "created_at": first,
                "updated_at": first,
            }
        ),
    )
    rate = rng.gamma(1.5, 1 / 60, customers)  # about one order every 40 days on average
    dropout = rng.beta(1.0, 4.0, customers)
    now = rng.uniform(0, span * 0.8, customers)
    alive = np.ones(customers, dtype=bool)
    left_at = np.full(customers, float(span))
    who, when = [], []
    while alive.any():
        idx = np.flatnonzero(alive)
        who.append(idx)
        when.append(now[idx])
        leaving = idx[rng.random(idx.size) < dropout[idx]]
        left_at[leaving] = now[leaving]
        alive[leaving] = False
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / rate[idx])
        alive[idx[now[idx] > span]] = False
    who, when = np.concatenate(who), np.concatenate(when)
    order_ids = reserve_ids(Order, who.size)
    placed = first + pd.to_timedelta(when, unit="D")
    copy_frame(
        Order,
        pd.DataFrame(
            {
                "id": order_ids,
                "external_id": [f"sim-o{i}" for i in order_ids],
                "customer_id": np.asarray(ids)[who],
                "placed_at": placed,
                "status": np.where(rng.random(who.size) < 0.05, "refunded", "paid"),
                "total": rng.lognormal(3.5, 0.6, who.size).round(2),
                "currency": "EUR",
                "sales_channel": "web",
            }
        ),
    )
    # Weekly-ish logins while the customer is still around.
    logins = rng.poisson(span / 10, customers)
    owner = np.repeat(np.arange(customers), logins)
    day = rng.uniform(0, span, owner.size)
    keep = day < left_at[owner]
    copy_frame(
        Event,
        pd.DataFrame(
            {
                "customer_id": np.asarray(ids)[owner[keep]],
                "kind": "login",
                "occurred_at": first + pd.to_timedelta(day[keep], unit="D"),
                "properties": "{}",
            }
        ),
    )
