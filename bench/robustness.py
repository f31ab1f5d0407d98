"""Does the champion hold up beyond the default shop? ``backtest`` on shops in six regimes.

Each shop is made by the generator (``customers.synthetic.process.REGIMES``) in its own
database (``bench_robustness``, emptied between shops): the default shop, a bare
transaction log (paid orders only: no events, products or refunds), strong heterogeneity
in purchase rates, strong seasonality with holiday peaks, events missing for a third of
the customers, and a small shop. Each is judged by ``backtest --json`` at three cut-offs
a quarter apart, the last one ``horizon`` days before the shop's end, beside the
generator's true probabilities (the oracle) on the same customers and labels.

Acceptance on every shop and cut-off: the champion's AUC is at least recency alone's and
at least the best single member's minus 0.005, and its Brier score at most that member's
plus 0.002. Exits non-zero listing the failures.

    .venv/bin/python bench/robustness.py [--customers 20000] [--small 2000] [--shops a,b]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from io import StringIO

import bootstrap

bootstrap.configure("bench_robustness")

END = dt.date(2026, 6, 30)
DAYS = 730
CUTOFF_STEP = dt.timedelta(days=91)
AUC_MARGIN = 0.005
BRIER_MARGIN = 0.002
# Shop name -> (generator regime, whether it is the small shop).
SHOPS = {
    "default": ("default", False),
    "transactions": ("transactions", False),
    "heterogeneous": ("heterogeneous", False),
    "seasonal": ("seasonal", False),
    "missing_events": ("missing_events", False),
    "small": ("default", True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="customers per shop")
    parser.add_argument("--small", type=int, default=2_000, help="customers of the small shop")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shops", default=",".join(SHOPS), help="comma-separated subset")
    args = parser.parse_args()
    shops = args.shops.split(",")
    unknown = sorted(set(shops) - set(SHOPS))
    if unknown:
        parser.error(f"unknown shops: {', '.join(unknown)}; known: {', '.join(SHOPS)}")

    from django.core.management import call_command

    bootstrap.ready()
    from django.db import connection

    from customers.synthetic.process import REGIMES
    from customers.synthetic.selectors import true_churn_probabilities
    from customers.synthetic.services import generate_shop
    from ml.backtest import what_if_definition
    from ml.metrics import evaluate
    from ml.services import cutoff_data
    from ml.training import BASELINE, COMPLEXITY, ENSEMBLE

    horizon = dt.timedelta(days=args.horizon_days)
    cutoffs = [END - horizon - k * CUTOFF_STEP for k in (2, 1, 0)]
    rows, failures = [], []
    for name in shops:
        regime, small = SHOPS[name]
        customers = args.small if small else args.customers
        with connection.cursor() as cursor:  # one shop at a time in this database
            cursor.execute(
                "TRUNCATE customers_customer, customers_product, customers_syntheticshop CASCADE"
            )
        started = time.perf_counter()
        generate_shop(
            customers=customers,
            days=DAYS,
            seed=args.seed,
            end=END,
            horizon_days=args.horizon_days,
            process=REGIMES[regime],
        )
        print(f"{name}: {customers:,} customers generated in {time.perf_counter() - started:.0f} s")
        for as_of in cutoffs:
            started = time.perf_counter()
            out = StringIO()
            call_command(
                "backtest", "--as-of", str(as_of), "--horizon-days", str(args.horizon_days),
                "--json", stdout=out,
            )  # fmt: skip
            results = json.loads(out.getvalue())
            seconds = time.perf_counter() - started
            judged = cutoff_data(as_of=as_of, definition=what_if_definition(args.horizon_days))
            truth = true_churn_probabilities(as_of=as_of, horizon_days=args.horizon_days)
            truth = truth.set_index("customer_id")["probability"].reindex(judged.features.index)
            if len(judged.labels) != results[0]["evaluated_rows"] or truth.isna().any():
                raise SystemExit(f"{name} {as_of}: the oracle does not cover the judged customers")
            oracle = evaluate(judged.labels, truth.to_numpy())
            champion = next(r for r in results if r["champion"])
            recency = next(r for r in results if r["model"] == BASELINE)
            # Single members: every algorithm ranked below the ensemble in simplicity.
            member = max(
                (r for r in results if COMPLEXITY[r["model"]] < COMPLEXITY[ENSEMBLE]),
                key=lambda r: r["auc"],
            )
            row = {
                "shop": name,
                "cutoff": as_of,
                "champion": champion["model"],
                "auc": champion["auc"],
                "brier": champion["brier"],
                "recency": recency["auc"],
                "member": member["model"],
                "member_auc": member["auc"],
                "member_brier": member["brier"],
                "oracle": oracle["auc"],
                "oracle_brier": oracle["brier"],
                "judged": len(judged.labels),
                "seconds": seconds,
            }
            row["failed"] = _failures(row)
            failures += [f"{name} {as_of}: {f}" for f in row["failed"]]
            rows.append(row)
            print(f"  backtest at {as_of} in {seconds:.0f} s", flush=True)

    print()
    print(
        f"{'shop':15}{'cut-off':>11}{'judged':>8} {'champion':20}{'AUC':>7}{'Brier':>7}"
        f"{'recency':>8} {'best member':20}{'AUC':>7}{'Brier':>7}{'oracle':>8}{'Brier':>7}  ok"
    )
    for r in rows:
        print(
            f"{r['shop']:15}{r['cutoff']!s:>11}{r['judged']:>8,} {r['champion']:20}"
            f"{r['auc']:>7.4f}{r['brier']:>7.4f}{r['recency']:>8.4f} {r['member']:20}"
            f"{r['member_auc']:>7.4f}{r['member_brier']:>7.4f}{r['oracle']:>8.4f}"
            f"{r['oracle_brier']:>7.4f}  {'no' if r['failed'] else 'yes'}"
        )
    print(
        f"\nacceptance: champion AUC >= recency's and >= best member's - {AUC_MARGIN}, "
        f"Brier <= best member's + {BRIER_MARGIN}"
    )
    if failures:
        print(f"{len(failures)} failure(s):")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print("all shops and cut-offs pass")
    return 0


def _failures(row: dict) -> list[str]:
    failed = []
    if row["auc"] < row["recency"]:
        failed.append(
            f"champion {row['champion']} AUC {row['auc']:.4f} is below recency alone's "
            f"{row['recency']:.4f}"
        )
    if row["auc"] < row["member_auc"] - AUC_MARGIN:
        failed.append(
            f"champion {row['champion']} AUC {row['auc']:.4f} is more than {AUC_MARGIN} below "
            f"{row['member']}'s {row['member_auc']:.4f}"
        )
    if row["brier"] > row["member_brier"] + BRIER_MARGIN:
        failed.append(
            f"champion {row['champion']} Brier {row['brier']:.4f} is more than {BRIER_MARGIN} "
            f"above {row['member']}'s {row['member_brier']:.4f}"
        )
    return failed


if __name__ == "__main__":
    sys.exit(main())
