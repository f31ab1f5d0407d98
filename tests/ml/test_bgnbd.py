import numpy as np
import pytest

from ml import bgnbd
from ml.bgnbd import BGNBDParams

# The CDNOW estimates from Fader, Hardie & Lee (2005), with time rescaled from weeks to days.
CDNOW = BGNBDParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(7)
    T = rng.uniform(200, 730, 30_000)
    x, t_x = bgnbd.simulate(CDNOW, T, rng)
    return x, t_x, T


def test_fit_recovers_the_parameters_it_was_simulated_from(simulated):
    fitted = bgnbd.fit(*simulated)
    for name, true in CDNOW.as_dict().items():
        assert fitted.as_dict()[name] == pytest.approx(true, rel=0.15), name


def test_fit_beats_the_true_parameters_only_by_sampling_noise(simulated):
    fitted = bgnbd.fit(*simulated)
    ll_fit = bgnbd.log_likelihood(fitted, *simulated).sum()
    ll_true = bgnbd.log_likelihood(CDNOW, *simulated).sum()
    assert ll_true <= ll_fit + 1e-6
    assert ll_fit - ll_true < 10  # about half a chi-square(4) quantile, not a different optimum


def test_a_customer_without_repeat_purchases_is_certainly_alive():
    alive = bgnbd.p_alive(CDNOW, x=[0, 0], t_x=[0, 0], T=[10, 500])
    assert alive == pytest.approx([1.0, 1.0])


def test_a_long_silence_after_frequent_purchases_means_likely_gone():
    recent, silent = bgnbd.p_alive(CDNOW, x=[10, 10], t_x=[290, 100], T=[300, 300])
    assert recent > 0.9 > 0.2 > silent


def test_churn_probability_follows_the_alive_probability_and_the_rate(simulated):
    x, t_x, T = simulated
    churn = bgnbd.p_no_purchase(CDNOW, x, t_x, T, horizon=90)
    expected = bgnbd.expected_purchases(CDNOW, x, t_x, T, horizon=90)
    assert np.all((churn >= 0) & (churn <= 1))
    assert np.all(expected >= 0)
    # More expected purchases, less chance of none: strongly anti-correlated.
    assert np.corrcoef(churn, expected)[0, 1] < -0.6


def test_expected_purchases_match_a_monte_carlo_of_the_model():
    rng = np.random.default_rng(3)
    n = 40_000
    T = np.full(n, 365.0)
    x_full, _ = bgnbd.simulate(CDNOW, T + 90, rng)
    # Population level: E[purchases in the first 365 days + next 90] from the model's
    # unconditional mean must match the simulation.
    expected_total = bgnbd.expected_purchases(CDNOW, np.zeros(1), np.zeros(1), np.zeros(1), 455)
    assert x_full.mean() == pytest.approx(expected_total[0], rel=0.05)


def test_it_refuses_a_last_purchase_after_the_cut_off():
    with pytest.raises(ValueError, match="t_x <= T"):
        bgnbd.p_alive(CDNOW, x=[1], t_x=[20], T=[10])
