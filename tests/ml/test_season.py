import numpy as np
import pandas as pd
import pytest

from ml import season
from ml.training import Dataset, train_zoo

START = 20_000.0  # days since the epoch (2024-10-04)
YEAR = season.YEAR_DAYS


def busy(days: np.ndarray, amplitude: float) -> np.ndarray:
    """A yearly season peaking in late December, mean 1 over the year."""
    day_of_year = np.asarray(days) % YEAR
    return 1 + amplitude * np.cos(2 * np.pi * (day_of_year - 360) / YEAR)


def purchases(customers: int, *, days: int, amplitude: float, seed: int = 0) -> dict:
    """Buy-till-you-die customers with purchases at rate ``λ · busy(t)``: signups growing
    over the period, a Gamma rate each, dropout after every purchase. Returns the
    orders' days and each customer's first and last order and count before the end."""
    rng = np.random.default_rng(seed)
    grid = START + np.arange(days + 1)
    clock = np.concatenate([[0.0], np.cumsum(busy(grid[:-1] + 0.5, amplitude))])
    signup = START + days * np.sqrt(rng.random(customers))  # more signups later
    rate = rng.gamma(0.9, 1 / 30, customers)
    dropout = rng.beta(1, 5, customers)
    owner, when = [np.arange(customers)], [signup]
    t = np.interp(signup, grid, clock)
    alive = rng.random(customers) >= dropout
    end = clock[-1]
    while alive.any():
        t = t + rng.exponential(1 / rate)
        alive &= t < end
        owner.append(np.flatnonzero(alive))
        when.append(np.interp(t[alive], clock, grid))
        alive &= rng.random(customers) >= dropout
    owner, when = np.concatenate(owner), np.concatenate(when)
    frame = pd.DataFrame({"owner": owner, "day": when}).groupby("owner")["day"]
    history = frame.agg(["min", "max", "count"])
    return {
        "order_days": when,
        "first": history["min"].to_numpy(),
        "last": history["max"].to_numpy(),
        "count": history["count"].to_numpy(),
        "cutoff": START + days,
    }


def fitted(history: dict) -> season.Season:
    return season.fit_season(
        history["order_days"],
        history["first"],
        history["last"],
        history["count"],
        cutoff_day=history["cutoff"],
    )


def test_the_season_of_a_window_is_read_from_the_orders_despite_growth_and_dropout():
    history = purchases(20_000, days=500, amplitude=0.3)
    year = fitted(history)
    for start in (START + 500, START + 560, START + 650):
        truth = busy(start + np.arange(90) + 0.5, 0.3).mean()
        assert year.intensity(start, 90) == pytest.approx(truth, abs=0.03)


def test_a_shop_without_seasons_or_with_less_than_a_year_gets_a_flat_year():
    flat = fitted(purchases(20_000, days=500, amplitude=0.0))
    assert flat.intensity(START + 520, 90) == pytest.approx(1.0, abs=0.02)
    young = fitted(purchases(20_000, days=300, amplitude=0.3))
    assert young == season.Season() and young.intensity(START + 300, 90) == 1.0


def window(p_alive: float, shape: float, scale: float, horizon: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            season.P_ALIVE: [p_alive],
            season.RATE_SHAPE: [shape],
            season.RATE_SCALE: [scale],
            season.HORIZON: [horizon],
        }
    )


def test_a_quieter_window_raises_churn_most_for_customers_who_still_buy():
    regular = window(0.99, 10.0, 200.0, 70.0)  # about one order every 20 days
    gone = window(0.05, 10.0, 200.0, 70.0)
    p = np.array([0.3])
    moved_regular = season.for_window(p, regular, trained_horizon=110.0)[0]
    moved_gone = season.for_window(p, gone, trained_horizon=110.0)[0]
    assert moved_regular > moved_gone > 0.3
    assert season.for_window(p, regular, trained_horizon=70.0)[0] == 0.3
    busier = season.for_window(p, regular, trained_horizon=50.0)[0]
    assert busier < 0.3


def test_models_move_to_the_window_they_score_and_recency_alone_stays_itself():
    rng = np.random.default_rng(0)
    n = 3000
    recency = rng.exponential(60, n)
    X = pd.DataFrame(
        {
            "recency_days": recency,
            season.P_ALIVE: np.exp(-recency / 100),
            season.RATE_SHAPE: rng.uniform(1, 10, n),
            season.RATE_SCALE: rng.uniform(100, 400, n),
            season.HORIZON: 110.0,
        }
    )
    y = (rng.random(n) < 1 / (1 + np.exp(1.5 - 0.03 * recency))).astype(int)
    cutoffs = np.repeat(np.array(["2025-01-01", "2025-02-01"], dtype="datetime64[D]"), n // 2)
    data = Dataset(X, y, np.arange(n), cutoffs)
    baseline, logistic = train_zoo(
        data,
        features=["recency_days", season.P_ALIVE],
        algorithms=["recency_baseline", "logistic_regression"],
    )
    assert logistic.trained_horizon == 110.0 and np.isnan(baseline.trained_horizon)
    quieter = X.assign(**{season.HORIZON: 70.0})
    assert np.all(logistic.predict_proba(quieter) >= logistic.predict_proba(X))
    assert logistic.predict_proba(quieter).mean() > logistic.predict_proba(X).mean() + 0.01
    assert np.array_equal(baseline.predict_proba(quieter), baseline.predict_proba(X))
    # Frames without the season's columns (older callers) are scored as trained.
    plain = X.drop(columns=season.COLUMNS)
    expected = logistic.estimator.predict_proba(plain[logistic.features])[:, 1]
    assert np.array_equal(logistic.predict_proba(plain), expected)
