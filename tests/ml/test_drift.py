import numpy as np
import pandas as pd

from ml.drift import DRIFT_THRESHOLD, psi, reference


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
