"""Bulk scoring at scale: features, prediction and writing scores for every customer.

Builds (once) a shop of CUSTOMERS customers and about ORDERS paid orders with one line each
in its own PostgreSQL database, trains the chosen algorithms (not timed against the
target), then scores and prints the seconds per step and the peak memory. Target: all
three steps together under 60 s for 1,000,000 customers and 20,000,000 orders.

    .venv/bin/python bench/score.py [--customers 1000000] [--orders 20000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import time

import bootstrap

bootstrap.configure("bench_score")

AS_OF = dt.date(2026, 6, 30)
DAYS = 3 * 365
CHUNK = 2_000_000


def build_shop(customers: int, orders: int, seed: int = 0) -> None:
    """A lean buy-till-you-die shop: heterogeneous rates and lifetimes, no events (the
    benchmark is about the order-side aggregates that dominate at this size)."""
    import numpy as np
    import pandas as pd
    from django.db import connection, transaction

    from core.bulk import copy_frame, reserve_ids
    from customers.models import Customer, Order, OrderLine, Product

    rng = np.random.default_rng(seed)
    start = pd.Timestamp(AS_OF - dt.timedelta(days=DAYS), tz="UTC")
    with transaction.atomic():
        products = Product.objects.bulk_create(
            Product(sku=f"P{i}", name=f"Product {i}", category=f"cat-{i % 12}", price=10 + i)
            for i in range(200)
        )
        ids = np.asarray(reserve_ids(Customer, customers))
        copy_frame(
            Customer,
            pd.DataFrame(
                {
                    "id": ids,
                    "external_id": "c" + pd.Series(ids).astype(str),
                    **dict.fromkeys(["name", "email", "phone"], ""),
                    "country": "DE",
                    "time_zone": "UTC",
                    **dict.fromkeys(
                        ["email_consent", "sms_consent", "webhook_consent", "marketing_opt_out"],
                        False,
                    ),
                    "attributes": "{}",
                    "created_at": start,
                    "updated_at": start,
                }
            ),
        )
        joined = rng.uniform(0, DAYS * 0.9, customers)
        stays = rng.exponential(DAYS * 0.6, customers)
        left = np.minimum(joined + stays, DAYS + 120)  # some keep buying after as_of
        rate = rng.gamma(1.2, 1.0, customers)
        rate *= orders / (rate * (left - joined)).sum()
        counts = 1 + rng.poisson(rate * (left - joined))
        counts = np.minimum(counts, 400)
        owner = np.repeat(np.arange(customers), counts)
        rng.shuffle(owner)
        product_ids = np.array([p.pk for p in products])
        for lo in range(0, owner.size, CHUNK):
            who = owner[lo : lo + CHUNK]
            order_ids = np.asarray(reserve_ids(Order, who.size))
            day = joined[who] + rng.uniform(0, 1, who.size) * (left[who] - joined[who])
            total = rng.lognormal(3.5, 0.7, who.size).round(2)
            copy_frame(
                Order,
                pd.DataFrame(
                    {
                        "id": order_ids,
                        "external_id": "o" + pd.Series(order_ids).astype(str),
                        "customer_id": ids[who],
                        "placed_at": start + pd.to_timedelta(day, unit="D"),
                        "status": np.where(rng.random(who.size) < 0.04, "refunded", "paid"),
                        "total": total,
                        "currency": "EUR",
                        "sales_channel": "web",
                    }
                ),
            )
            copy_frame(
                OrderLine,
                pd.DataFrame(
                    {
                        "order_id": order_ids,
                        "position": 1,
                        "product_id": rng.choice(product_ids, who.size),
                        "sku": "",
                        "quantity": 1,
                        "unit_price": total,
                        "amount": total,
                    }
                ),
            )
            print(f"  orders written: {lo + who.size:,}", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=20_000_000)
    parser.add_argument("--algorithms", default="recency_baseline,lightgbm")
    parser.add_argument("--score-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    bootstrap.ready()

    from customers.models import Customer, Order
    from ml.models import ModelVersion
    from ml.services import train_models

    if args.score_only:
        score()
        return
    if not Customer.objects.exists():
        started = time.perf_counter()
        build_shop(args.customers, args.orders)
        print(f"built the shop in {time.perf_counter() - started:.0f} s")
    customers = Customer.objects.count()
    orders = Order.objects.count()
    print(f"shop: {customers:,} customers, {orders:,} orders")

    if not ModelVersion.objects.filter(status="champion").exists():
        started = time.perf_counter()
        result = train_models(as_of=AS_OF, algorithms=args.algorithms.split(","))
        print(
            f"trained {', '.join(v.algorithm for v in result.candidates)} in "
            f"{time.perf_counter() - started:.0f} s; champion {result.best.algorithm} "
            f"AUC {result.best.metrics['auc']:.4f}"
        )

    # A fresh process, so the peak memory is the scoring run's own.
    subprocess.run([sys.executable, __file__, "--score-only"], check=True)


def score() -> None:
    from ml.services import score_customers

    run = score_customers(as_of=AS_OF, rescore=True)
    s = run.seconds
    total = s["features"] + s["predict"] + s["write"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"scored {run.customers_scored:,} customers with {run.model_version.algorithm}: "
        f"features {s['features']:.1f} s, prediction+reasons {s['predict']:.1f} s, "
        f"writing {s['write']:.1f} s, total {total:.1f} s (target < 60); "
        f"peak memory {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
