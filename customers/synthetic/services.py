"""Generate a synthetic shop into the database, and recompute its truth at any cut-off."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.db import transaction

from core.bulk import analyze, copy_frame, foreign_keys_checked_in_bulk, reserve_ids
from customers.models import (
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    SyntheticResponse,
    SyntheticShop,
    SyntheticTruth,
)
from customers.selectors import shop_has_data
from customers.synthetic.process import Params, Shop, simulate
from customers.synthetic.responses import draw_responses
from customers.synthetic.truth import churn_probability_of

CATEGORIES = [
    "shoes", "outerwear", "knitwear", "shirts", "trousers",
    "accessories", "bags", "sportswear", "underwear", "home",
]  # fmt: skip
COUNTRIES = {
    "DE": "Europe/Berlin", "FR": "Europe/Paris", "NL": "Europe/Amsterdam",
    "AT": "Europe/Vienna", "ES": "Europe/Madrid", "IT": "Europe/Rome", "PL": "Europe/Warsaw",
}  # fmt: skip
FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hugo", "Ida", "Jonas"]
LAST = ["Schmidt", "Martin", "de Vries", "Rossi", "Garcia", "Nowak", "Huber", "Weber"]


class ShopExists(Exception):
    """The database already holds customers; generating would mix two shops."""


def _stamp(start: pd.Timestamp, days: np.ndarray) -> pd.Series:
    # Whole microseconds so the database round-trip is exact (the truth reads them back).
    return pd.Series(start + pd.to_timedelta(np.round(days * 86_400_000_000), unit="us"))


@transaction.atomic
def generate_shop(
    *,
    customers: int,
    days: int,
    seed: int,
    end: dt.date,
    horizon_days: int = 90,
    replace: bool = False,
) -> SyntheticShop:
    """Write a believable shop with ``days`` of history ending on ``end`` (inclusive)."""
    if shop_has_data():
        if not replace:
            raise ShopExists(
                "the database already has customers or products; use --replace to delete "
                "all shop data first, or --if-empty to keep it"
            )
        for model in (SyntheticShop, Event, OrderLine, Order, Customer, Product):
            model.objects.all().delete()
    rng = np.random.default_rng(seed)
    start_date = end - dt.timedelta(days=days - 1)
    start = pd.Timestamp(start_date, tz="UTC")
    params = Params(horizon_days=horizon_days)
    clock_args = {
        "days": days + 2 * 366,
        "start_weekday": start_date.weekday(),
        "start_day_of_year": start_date.timetuple().tm_yday,
    }
    shop = simulate(
        params,
        customers=customers,
        days=days,
        start_weekday=start_date.weekday(),
        start_day_of_year=start_date.timetuple().tm_yday,
        rng=rng,
    )
    record = SyntheticShop.objects.create(
        seed=seed,
        start=start_date,
        end=end,
        customers=customers,
        params=params.as_dict() | {"clock": clock_args},
    )
    customer_ids = np.asarray(reserve_ids(Customer, customers))
    _write_customers(rng, shop, customer_ids, start)
    products = _write_products(rng, params)
    # The shop was empty, so every table below gets at least one row per customer.
    children = (Order, OrderLine, Event, SyntheticTruth, SyntheticResponse)
    with foreign_keys_checked_in_bulk(*children, rows=customers, rebuild_indexes=True):
        external, reviewed_product = _write_orders(rng, shop, customer_ids, products, start)
        _write_events(rng, shop, customer_ids, start, external, reviewed_product)
        _write_truth(rng, shop, customer_ids, record, start)
    analyze()
    return record


def _write_customers(rng, shop: Shop, ids: np.ndarray, start: pd.Timestamp) -> None:
    n = ids.size
    signup = _stamp(start, shop.signup)
    countries = np.array(list(COUNTRIES))
    country = countries[rng.choice(len(countries), n, p=[0.35, 0.15, 0.12, 0.1, 0.1, 0.1, 0.08])]
    number = pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(6)
    email_ok = rng.random(n) < 0.8
    sms_ok = rng.random(n) < 0.4
    hook_ok = rng.random(n) < 0.3
    opted_out = rng.random(n) < 0.03
    copy_frame(
        Customer,
        pd.DataFrame(
            {
                "id": ids,
                "external_id": "C" + number,
                "name": pd.Series(np.array(FIRST)[rng.integers(0, len(FIRST), n)])
                + " "
                + np.array(LAST)[rng.integers(0, len(LAST), n)],
                "email": "customer" + number + "@example.com",
                "phone": "+4915" + pd.Series(rng.integers(10**7, 10**8, n)).astype(str),
                "country": country,
                "time_zone": pd.Series(country).map(COUNTRIES),
                "signup_date": signup.dt.date,
                "email_consent": email_ok,
                "email_consent_at": signup.where(email_ok),
                "sms_consent": sms_ok,
                "sms_consent_at": signup.where(sms_ok),
                "webhook_consent": hook_ok,
                "webhook_consent_at": signup.where(hook_ok),
                "marketing_opt_out": opted_out,
                "marketing_opt_out_at": signup.where(opted_out),
                "attributes": '{"source": "synthetic"}',
                "created_at": signup,
                "updated_at": signup,
            }
        ),
    )


def _write_products(rng, params: Params) -> pd.DataFrame:
    n = params.products
    category = rng.integers(0, params.categories, n)
    price = rng.lognormal(3.3, 0.6, n).round(2) + 0.99
    created = Product.objects.bulk_create(
        Product(
            sku=f"SKU-{i + 1:04d}",
            name=f"{CATEGORIES[c].capitalize()} item {i + 1}",
            category=CATEGORIES[c],
            price=f"{p:.2f}",
        )
        for i, (c, p) in enumerate(zip(category, price, strict=True))
    )
    return pd.DataFrame(
        {
            "id": [p.pk for p in created],
            "sku": [p.sku for p in created],
            "category": category,
            "price": price,
        }
    )


def _write_orders(
    rng, shop: Shop, ids, products: pd.DataFrame, start
) -> tuple[np.ndarray, np.ndarray]:
    """Paid orders with lines, and the refunded/cancelled orders beside them; returns each
    paid order's external id and first product (reviews and tickets refer to them)."""
    n = shop.order_customer.size
    cust = shop.order_customer
    order_ids = np.asarray(reserve_ids(Order, n))
    external = "O" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(8)
    lines = 1 + np.minimum(rng.poisson(0.7 * shop.spend_level[cust]), 3)
    line_order = np.repeat(np.arange(n), lines)
    position = np.arange(line_order.size) - np.repeat(np.cumsum(lines) - lines, lines) + 1
    # A category from the customer's taste, then a product of that category.
    taste = np.cumsum(shop.category_pref[cust[line_order]], axis=1)
    category = (rng.random(line_order.size)[:, None] > taste).sum(axis=1)
    category = np.minimum(category, shop.params.categories - 1)
    by_category = products.sort_values("category")
    first = np.searchsorted(by_category["category"].to_numpy(), np.arange(shop.params.categories))
    count = np.diff(np.append(first, len(by_category)))
    count_safe = np.maximum(count[category], 1)
    pick = first[category] + (rng.random(line_order.size) * count_safe).astype(int)
    pick = np.minimum(pick, len(by_category) - 1)
    product = by_category.iloc[pick]
    quantity = 1 + (rng.random(line_order.size) < 0.15)
    amount = (product["price"].to_numpy() * quantity).round(2)
    total = np.bincount(line_order, weights=amount, minlength=n).round(2)
    placed = _stamp(start, shop.order_time)
    channel = np.array(["web", "app", "marketplace", "store", "phone"])
    copy_frame(
        Order,
        pd.DataFrame(
            {
                "id": order_ids,
                "external_id": external,
                "customer_id": ids[cust],
                "placed_at": placed,
                "status": "paid",
                "total": total,
                "currency": "EUR",
                "sales_channel": channel[rng.choice(5, n, p=[0.55, 0.3, 0.08, 0.05, 0.02])],
            }
        ),
    )
    copy_frame(
        OrderLine,
        pd.DataFrame(
            {
                "order_id": order_ids[line_order],
                "position": position,
                "product_id": product["id"].to_numpy(),
                "sku": product["sku"].to_numpy(),
                "quantity": quantity,
                "unit_price": product["price"].to_numpy(),
                "amount": amount,
            }
        ),
    )
    # A refunded or cancelled order just before the paid one it accompanies.
    refunded = np.flatnonzero(shop.order_refund)
    refund_ids = np.asarray(reserve_ids(Order, refunded.size))
    first_line = np.cumsum(lines) - lines
    copy_frame(
        Order,
        pd.DataFrame(
            {
                "id": refund_ids,
                "external_id": external.iloc[refunded].to_numpy() + "-r",
                "customer_id": ids[cust[refunded]],
                "placed_at": _stamp(start, shop.order_time[refunded] - rng.random(refunded.size)),
                "status": np.where(rng.random(refunded.size) < 0.75, "refunded", "cancelled"),
                "total": amount[first_line[refunded]],
                "currency": "EUR",
                "sales_channel": "web",
            }
        ),
    )
    return external.to_numpy(), product["id"].to_numpy()[first_line]


def _write_events(rng, shop: Shop, ids, start, external, reviewed_product) -> None:
    sessions = shop.session_customer.size
    views = rng.poisson(1.5, sessions)
    view_owner = np.repeat(np.arange(sessions), views)
    carts = np.flatnonzero(rng.random(sessions) < 0.25)
    logins = np.flatnonzero(rng.random(sessions) < 0.5)
    session = np.concatenate([np.arange(sessions), view_owner, carts, logins])
    kind = np.repeat(
        ["visit", "product_view", "add_to_cart", "login"],
        [sessions, view_owner.size, carts.size, logins.size],
    )
    offset = np.where(kind == "visit", 0.0, rng.random(session.size) * 0.02)  # within ~30 min
    frame = pd.DataFrame(
        {
            "customer_id": ids[shop.session_customer[session]],
            "kind": kind,
            "occurred_at": _stamp(start, shop.session_time[session] + offset),
            "properties": "{}",
        }
    )
    copy_frame(Event, frame)

    ticket = np.flatnonzero(~np.isnan(shop.order_ticket_time))
    review = np.flatnonzero(~np.isnan(shop.order_review_time))
    copy_frame(
        Event,
        pd.DataFrame(
            {
                "external_id": np.concatenate(
                    ["tkt-" + external[ticket], "rev-" + external[review]]
                ),
                "customer_id": ids[shop.order_customer[np.concatenate([ticket, review])]],
                "kind": ["support_ticket"] * ticket.size + ["review"] * review.size,
                "occurred_at": _stamp(
                    start,
                    np.concatenate(
                        [shop.order_ticket_time[ticket], shop.order_review_time[review]]
                    ),
                ),
                "value": np.concatenate([np.full(ticket.size, np.nan), shop.order_rating[review]]),
                "product_id": np.concatenate(
                    [np.full(ticket.size, np.nan), reviewed_product[review]]
                ),
                "properties": "{}",
            }
        ).astype({"product_id": "Int64"}),
    )


def _summaries_in_memory(shop: Shop, T: float) -> pd.DataFrame:
    """The observable history at day ``T``, from the generated arrays."""
    seen = shop.order_time < T
    cust = shop.order_customer[seen]
    n = shop.signup.size
    count = np.bincount(cust, minlength=n)
    last_index = np.full(n, -1)
    last_index[cust] = np.flatnonzero(seen)  # orders are sorted by (customer, time)
    has = count > 0
    li = last_index[has]
    t_x = shop.order_time[li]
    s_cust, s_time = shop.session_customer, shop.session_time
    before = s_time < T
    sessions = np.bincount(s_cust[before], minlength=n)
    last_of = np.full(n, np.inf)
    last_of[has] = t_x
    after = before & (s_time > last_of[s_cust])
    sessions_after = np.bincount(s_cust[after], minlength=n)
    delay = np.bincount(s_cust[after], weights=s_time[after] - last_of[s_cust[after]], minlength=n)
    rating = np.where(shop.order_review_time[li] < T, shop.order_rating[li], 0)
    return pd.DataFrame(
        {
            "index": np.flatnonzero(has),
            "a": shop.signup[has],
            "x": count[has] - 1,
            "t_x": t_x,
            "refund_last": shop.order_refund[li],
            "ticket_last": shop.order_ticket_time[li] < T,
            "rating_last": rating,
            "sessions": sessions[has],
            "sessions_after": sessions_after[has],
            "delay_after": delay[has],
        }
    )


def _write_truth(rng, shop: Shop, ids, record: SyntheticShop, start) -> None:
    horizon = shop.params.horizon_days
    summary = _summaries_in_memory(shop, float(shop.days))
    prob = np.full(ids.size, np.nan)
    prob[summary["index"].to_numpy()] = churn_probability_of(
        summary, shop.params, shop.clock, T=float(shop.days), horizon=horizon
    )
    left = np.isnan(shop.left_at)
    copy_frame(
        SyntheticTruth,
        pd.DataFrame(
            {
                "customer_id": ids,
                "shop_id": record.pk,
                "purchase_rate": shop.rate,
                "dropout_prob": shop.dropout,
                "session_rate": shop.session_rate,
                "spend_level": shop.spend_level,
                "dropped_out_at": _stamp(start, np.where(left, 0.0, shop.left_at)).where(~left),
                "true_churn_prob": prob,
                "horizon_days": horizon,
            }
        ),
    )
    responses = draw_responses(
        rng, rate=shop.rate, spend_level=shop.spend_level, category_pref=shop.category_pref
    )
    copy_frame(
        SyntheticResponse,
        pd.concat(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "offer_type": offer,
                    "purchase_boost": boost,
                    "dropout_shock": shock,
                }
            )
            for offer, (boost, shock) in responses.items()
        ),
    )
