"""Synthetic shop generation speed: 100,000 customers with two years of history.

Target: under 120 s on a 2-core machine, written to PostgreSQL. Uses its own database
(emptied first) so nothing else is touched:

    .venv/bin/python bench/generate.py [--customers 100000] [--days 730]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import bootstrap

bootstrap.configure("bench_gen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    bootstrap.ready()
    from django.db import connection

    from customers.models import Customer, Event, Order, OrderLine
    from customers.synthetic.services import generate_shop

    with connection.cursor() as cursor:  # start empty without timing the clean-up
        cursor.execute(
            "TRUNCATE customers_customer, customers_product, customers_syntheticshop CASCADE"
        )
    started = time.perf_counter()
    generate_shop(
        customers=args.customers, days=args.days, seed=args.seed, end=dt.date(2026, 6, 30)
    )
    seconds = time.perf_counter() - started
    print(
        f"generate_shop: {args.customers:,} customers x {args.days} days in {seconds:.1f} s "
        f"(target < 120): {Order.objects.count():,} orders, {OrderLine.objects.count():,} "
        f"lines, {Event.objects.count():,} events"
    )
    assert Customer.objects.count() == args.customers


if __name__ == "__main__":
    main()
