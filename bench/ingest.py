"""Ingest throughput on the configured database (PostgreSQL unless DATABASE_URL says otherwise).

Prints orders per second for `import_transactions` (CSV path, target >= 50,000/s) and for the
bulk orders API (target >= 5,000/s). Run with `make bench`, or on its own database:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import argparse

import bootstrap

bootstrap.configure("bench", ALLOWED_HOSTS="testserver")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-orders", type=int, default=1_000_000)
    parser.add_argument("--api-orders", type=int, default=50_000)
    parser.add_argument("--api-batch", type=int, default=5_000)
    args = parser.parse_args()

    bootstrap.ready()

    from ingest_api import bench_api
    from ingest_csv import bench_transactions

    csv_rate = bench_transactions(orders=args.csv_orders)
    api_rate = bench_api(orders=args.api_orders, batch=args.api_batch)
    print(f"import_transactions: {csv_rate:,.0f} orders/s  (target >= 50,000)")
    print(f"bulk orders API:     {api_rate:,.0f} orders/s  (target >= 5,000)")


if __name__ == "__main__":
    main()
