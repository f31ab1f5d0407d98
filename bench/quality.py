"""Model quality against the synthetic shop's ground truth.

Generates (once) a synthetic shop of CUSTOMERS customers in its own database, trains the
zoo as it would have been trained 90 days before the shop's end, and judges every model,
the generator's true probabilities and the recency-only baseline on the same customers
and the same realised labels of the last 90 days. Acceptance: the champion's AUC within
0.015 of the truth's, its Brier score within 0.008, and better than recency alone.

    .venv/bin/python bench/quality.py [--customers 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import bootstrap

bootstrap.configure("bench_quality")

END = dt.date(2026, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    bootstrap.ready()

    from customers.models import Customer
    from customers.synthetic.selectors import true_churn_probabilities
    from customers.synthetic.services import generate_shop
    from ml.features import FEATURE_NAMES
    from ml.metrics import evaluate
    from ml.selectors import active_definition
    from ml.services import cutoff_data, stack, training_cutoffs
    from ml.training import choose, train_zoo

    if Customer.objects.count() != args.customers:
        started = time.perf_counter()
        generate_shop(customers=args.customers, days=730, seed=args.seed, end=END, replace=True)
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.0f} s")

    definition = active_definition()
    horizon = dt.timedelta(days=definition.horizon_days)
    as_of = END - horizon
    started = time.perf_counter()
    cutoffs = training_cutoffs(last=as_of - horizon, count=3, step_days=30)
    train = stack([cutoff_data(as_of=c, definition=definition) for c in cutoffs])
    judged = cutoff_data(as_of=as_of, definition=definition)
    models = train_zoo(train, features=FEATURE_NAMES, seed=0)
    print(
        f"trained {len(models)} models on {len(train.y):,} rows from {len(cutoffs)} cut-offs "
        f"in {time.perf_counter() - started:.0f} s; judging {len(judged.labels):,} customers "
        f"at {as_of} on orders up to {END}"
    )
    truth = true_churn_probabilities(as_of=as_of, horizon_days=definition.horizon_days)
    truth = truth.set_index("customer_id")["probability"].reindex(judged.features.index)
    rows = {"truth (generator)": evaluate(judged.labels, truth.to_numpy())}
    champion = choose(models)  # as training and backtest choose it
    for model in models:
        name = model.algorithm + (" <- champion" if model is champion else "")
        rows[name] = evaluate(judged.labels, model.predict_proba(judged.features))
    print(f"{'':28}{'AUC':>8}{'Brier':>8}{'PR AUC':>8}{'lift@10%':>10}")
    for name, m in rows.items():
        print(
            f"{name:28}{m['auc']:>8.4f}{m['brier']:>8.4f}{m['pr_auc']:>8.4f}"
            f"{m['top_decile_lift']:>10.2f}"
        )
    best = rows[f"{champion.algorithm} <- champion"]
    base = rows["recency_baseline"]
    gold = rows["truth (generator)"]
    print(
        f"champion {champion.algorithm}: AUC gap to truth {gold['auc'] - best['auc']:+.4f} "
        f"(target <= 0.015), Brier gap {best['brier'] - gold['brier']:+.4f} (target <= 0.008), "
        f"AUC over recency-only {best['auc'] - base['auc']:+.4f} (target > 0)"
    )


if __name__ == "__main__":
    main()
