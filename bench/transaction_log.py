"""Churn models from a bare transaction log: customer, date, amount, nothing else.

Exports a synthetic shop's paid orders as the plain log many shops have, wipes the
database, imports the log with import_transactions and runs the backtest: no events,
no reviews, no products, and the best model should still beat recency alone.

    .venv/bin/python bench/transaction_log.py [--customers 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import bootstrap

bootstrap.configure("bench_txlog")

END = dt.date(2026, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()

    from django.core.management import call_command

    bootstrap.ready()
    from io import StringIO

    from django.db import connection

    from core.sql import read_frame
    from customers.models import Event, Order
    from customers.synthetic.services import generate_shop

    generate_shop(customers=args.customers, days=730, seed=3, end=END, replace=True)
    log = read_frame(
        """
        SELECT c.external_id AS customer, o.placed_at AS date, o.total AS amount
        FROM customers_order o JOIN customers_customer c ON c.id = o.customer_id
        WHERE o.status = 'paid' ORDER BY o.total
        """,
        [],
    )
    with connection.cursor() as cursor:  # forget everything but the log
        cursor.execute(
            "TRUNCATE customers_customer, customers_product, customers_syntheticshop CASCADE"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sales.csv"
        log.to_csv(path, index=False)
        started = time.perf_counter()
        call_command(
            "import_transactions", str(path), "--customer-col", "customer",
            "--date-col", "date", "--amount-col", "amount",
        )  # fmt: skip
        print(f"imported {len(log):,} purchases in {time.perf_counter() - started:.1f} s")
    print(f"events in the database: {Event.objects.count()}, orders: {Order.objects.count():,}")
    out = StringIO()
    call_command(
        "backtest", "--as-of", str(END - dt.timedelta(days=90)), "--horizon-days", "90",
        "--json", stdout=out,
    )  # fmt: skip
    results = json.loads(out.getvalue())
    for r in results:
        mark = " <- champion" if r["champion"] else ""
        print(f"{r['model']:22}AUC {r['auc']:.4f}  Brier {r['brier']:.4f}{mark}")
    best = max(results, key=lambda r: r["auc"])
    base = next(r for r in results if r["model"] == "recency_baseline")
    print(f"best {best['model']} AUC {best['auc']:.4f} vs recency alone {base['auc']:.4f}")


if __name__ == "__main__":
    main()
