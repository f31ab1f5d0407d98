import numpy as np
import pandas as pd

from ml.drift import DRIFT_THRESHOLD, comparable_psi, comparable_reference, psi, reference
from ml.models import ScoringRun


def test_same_population_is_stable_and_a_shift_or_missing_values_drift():
    rng = np.random.default_rng(1)
    train = pd.DataFrame(
        {"recency": rng.exponential(30, 50_000), "rating": rng.uniform(1, 5, 50_000)}
    )
    ref = reference(train)
    same = pd.DataFrame(
        {"recency": rng.exponential(30, 20_000), "rating": rng.uniform(1, 5, 20_000)}
    )
    assert max(psi(ref, same).values()) < 0.02
    shifted = same.assign(recency=same["recency"] * 2.5)
    assert psi(ref, shifted)["recency"] > DRIFT_THRESHOLD
    gone = same.assign(rating=np.where(rng.random(20_000) < 0.5, np.nan, same["rating"]))
    assert psi(ref, gone)["rating"] > DRIFT_THRESHOLD
    assert psi(ref, gone)["recency"] < 0.02


def test_a_constant_column_has_one_bin_and_no_infinite_index():
    ref = reference(pd.DataFrame({"x": np.zeros(100)}))
    moved = psi(ref, pd.DataFrame({"x": np.ones(100)}))["x"]
    assert np.isfinite(moved) and moved > DRIFT_THRESHOLD


def _aged_shop(rng, age_days: float, n: int) -> pd.DataFrame:
    """Customers who joined uniformly over a shop's life, seen when the shop is that old."""
    return pd.DataFrame(
        {"tenure_days": rng.uniform(0, age_days, n), "recency_days": rng.exponential(30, n)}
    )


def test_tenure_grown_with_the_calendar_is_not_drift_but_a_shifted_mix_of_new_customers_is():
    rng = np.random.default_rng(2)
    ages = (500, 530, 560)
    train = pd.concat([_aged_shop(rng, a, 20_000) for a in ages], ignore_index=True)
    cutoffs = np.repeat(np.array(ages), 20_000)
    today = _aged_shop(rng, 740, 20_000)
    assert psi(reference(train), today)["tenure_days"] > DRIFT_THRESHOLD  # the false alarm
    ref = comparable_reference(train, cutoffs)
    assert "tenure_days" not in ref
    assert max(comparable_psi(ref, today).values()) < 0.02
    flooded = today.assign(
        tenure_days=np.where(rng.random(20_000) < 0.5, 1.0, today["tenure_days"])
    )
    assert comparable_psi(ref, flooded)["tenure_share"] > DRIFT_THRESHOLD


def test_a_run_says_which_features_drift_in_words():
    run = ScoringRun(drift={"tenure_share": 0.31, "recency_days": 0.4, "rating": 0.01})
    run.drift_flagged = True
    assert run.drift_summary() == "⚠ drift: recency_days 0.40, tenure_share 0.31, rating 0.01"
    run.drift, run.drift_flagged = {"recency_days": 0.12, "rating": 0.01}, False
    assert run.drift_summary() == "stable (largest PSI 0.12, recency_days)"
    assert ScoringRun(drift={}).drift_summary() == "not measured"
