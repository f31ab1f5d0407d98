"""import_transactions throughput: a synthetic transaction log through the real importer."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_log(path: Path, *, orders: int, customers: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, orders), unit="D")
    pd.DataFrame(
        {
            "customer": "K" + pd.Series(rng.integers(0, customers, orders)).astype(str),
            "date": day.strftime("%Y-%m-%d"),
            "amount": rng.lognormal(3.5, 0.7, orders).round(2),
            "quantity": 1 + rng.poisson(0.4, orders),
        }
    ).to_csv(path, index=False)


def bench_transactions(*, orders: int) -> float:
    """Orders per second for a fresh log of ``orders`` lines (about 10 per customer)."""
    from customers.importing.services import import_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "transactions.csv"
        write_log(path, orders=orders, customers=max(orders // 10, 1))
        started = time.perf_counter()
        result = import_file(
            path=path, kind="transactions", mapping={"date": "placed_at"}, progress=False
        )
        seconds = time.perf_counter() - started
    created = result.counts["created"] + result.counts["unchanged"]
    print(f"import_transactions: {created:,} orders in {seconds:.1f} s")
    return created / seconds
