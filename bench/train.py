"""Training with model selection at scale: the whole zoo on a synthetic shop.

Generates (once) a synthetic shop of CUSTOMERS customers with events, reviews and
tickets in its own PostgreSQL database (``bench_train``), then times ``train_models`` as
the weekly retrain runs it: features and labels at three training cut-offs and the
holdout, the bounded hyper-parameter search and calibrated fit of every algorithm, the
holdout metrics, registration and the champion gate. Prints the seconds per algorithm
and in all. Target: under 5 minutes for 200,000 customers.

    .venv/bin/python bench/train.py [--customers 200000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import bootstrap

bootstrap.configure("bench_train")

END = dt.date(2026, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    bootstrap.ready()

    from django.db import connection

    from customers.models import Customer
    from customers.synthetic.services import generate_shop
    from ml.models import ModelVersion
    from ml.services import train_models

    if Customer.objects.count() != args.customers:
        started = time.perf_counter()
        generate_shop(customers=args.customers, days=730, seed=args.seed, end=END, replace=True)
        # A weekly retrain reads settled tables: without this, autovacuum of the shop
        # just loaded competed for the two cores during the timed part.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.0f} s")
    ModelVersion.objects.all().delete()  # every run gates against the same (empty) registry

    started = time.perf_counter()
    result = train_models(as_of=END)
    total = time.perf_counter() - started
    fitted = sum(v.fit_seconds for v in result.candidates)
    version = result.candidates[0]
    print(
        f"{version.training_rows:,} training rows from {len(version.training_cutoffs)} "
        f"cut-offs, holdout of {version.holdout_rows:,} customers at {version.holdout_cutoff}"
    )
    print(f"{'algorithm':22}{'search+fit s':>14}{'holdout AUC':>13}{'Brier':>8}")
    for v in result.candidates:
        print(
            f"{v.algorithm:22}{v.fit_seconds:>14.1f}{v.metrics['auc']:>13.4f}"
            f"{v.metrics['brier']:>8.4f}"
        )
    print(
        f"trained and selected {len(result.candidates)} algorithms in {total:.1f} s "
        f"(fitting {fitted:.1f} s, features, metrics and registry {total - fitted:.1f} s; "
        f"target < 300); champion {result.best.algorithm}, "
        f"{'promoted' if result.promoted else 'not promoted'} ({result.gate})"
    )


if __name__ == "__main__":
    main()
