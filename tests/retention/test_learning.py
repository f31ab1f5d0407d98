"""The numeric core of learned uplift: offer effects shrunk to the prior, the X-learner,
Qini/AUUC, the always-valid answer and the SVG charts (no database)."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from retention.learning import UpliftLearner, as_response, effect_posterior
from retention.qini import qini, qini_chart
from retention.sequential import (
    KEEP,
    NOT_YET,
    STOP,
    aa_false_helps,
    campaign_sequential,
    confidence_sequence,
)
from retention.uplift import retention_uplift


def test_without_outcomes_the_learned_response_is_the_admins_prior():
    e = effect_posterior(
        treated=0, treated_retained=0, control=0, control_retained=0, prior=0.08, prior_strength=50
    )
    assert e.response == pytest.approx(0.08, abs=0.01)
    assert e.response_low < 0.08 < e.response_high


def test_with_many_outcomes_the_data_outweigh_the_prior_and_the_interval_covers_the_truth():
    rng = np.random.default_rng(3)
    covered = 0
    for seed in range(20):
        yt, yc = rng.binomial(3000, 0.40), rng.binomial(3000, 0.30)
        e = effect_posterior(
            treated=3000,
            treated_retained=yt,
            control=3000,
            control_retained=yc,
            prior=0.02,
            prior_strength=50,
            draws=4000,
            seed=seed,
        )
        covered += e.effect_low <= 0.10 <= e.effect_high
    assert covered >= 17  # a 95% interval misses about 1 in 20
    assert e.response == pytest.approx(0.10 / 0.70, abs=0.04)  # kept among would-be leavers


def test_an_offer_that_drives_customers_away_is_learned_as_harmful():
    e = effect_posterior(
        treated=2000,
        treated_retained=500,
        control=2000,
        control_retained=640,
        prior=0.1,
        prior_strength=50,
    )
    assert e.effect_high < 0 and e.response < 0 and e.p_helps < 0.01


def test_a_prior_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="prior"):
        effect_posterior(
            treated=1, treated_retained=0, control=1, control_retained=0, prior=1, prior_strength=5
        )


def _heterogeneous(n: int, seed: int):
    """Two features; offer 1 helps in proportion to x0, offer 2 does nothing."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))
    treated = rng.random(n) < 0.5
    offer = np.where(rng.random(n) < 0.5, 1, 2)
    tau = np.where(offer == 1, 0.4 * X[:, 0], 0.0)
    base = 0.2 + 0.2 * X[:, 1]
    retained = rng.random(n) < base + treated * tau
    return X, retained, treated, offer


def test_the_x_learner_finds_who_responds_to_which_offer():
    X, retained, treated, offer = _heterogeneous(12_000, 1)
    learner = UpliftLearner(features=["x0", "x1"]).fit(X, retained, treated, offer)
    grid = np.column_stack([np.linspace(0.05, 0.95, 50), np.full(50, 0.5)])
    tau = learner.predict(grid, [1, 2, 3])
    assert np.isnan(tau[:, 2]).all()  # an offer never given is not guessed
    assert np.corrcoef(tau[:, 0], 0.4 * grid[:, 0])[0, 1] > 0.8
    assert tau[-10:, 0].mean() - tau[:10, 0].mean() > 0.15
    assert abs(tau[:, 1].mean()) < 0.05
    assert learner.baseline(grid).mean() == pytest.approx(0.3, abs=0.04)


def test_a_rarely_chosen_offer_is_weighed_against_the_controls_recorded_with_it():
    """Offer 2 goes to one customer in ten (x1 high); its arm is still a coin flip, and its
    effect where it was given is read off its own controls, not the whole control arm."""
    rng = np.random.default_rng(4)
    n = 16_000
    X = rng.random((n, 2))
    offer = np.where(X[:, 1] > 0.9, 2, 1)
    treated = rng.random(n) < 0.5
    tau = np.where(offer == 2, 0.3, 0.1)
    retained = rng.random(n) < 0.1 + 0.5 * X[:, 1] + treated * tau
    learner = UpliftLearner(features=["x0", "x1"]).fit(X, retained, treated, offer)
    assert learner.propensity[2] == pytest.approx(0.5, abs=0.03)
    assert learner.propensity[1] == pytest.approx(0.5, abs=0.03)
    given = X[offer == 2][:200]
    assert learner.predict(given, [2])[:, 0].mean() == pytest.approx(0.3, abs=0.06)


def test_a_rare_offer_borrows_who_responds_from_the_common_one():
    """Both offers help in proportion to x0; the rare one (one customer in eight) helps 5
    points more. Learned together, the rare offer keeps the shared slope and its own
    difference; learned alone from its few outcomes, the difference came out at 12."""
    rng = np.random.default_rng(2)
    n = 14_000
    X = rng.random((n, 4))
    offer = np.where(rng.random(n) < 0.12, 2, 1)
    treated = rng.random(n) < 0.5
    tau = np.where(offer == 2, 0.05, 0.0) + 0.3 * X[:, 0]
    retained = rng.random(n) < 0.2 + 0.2 * X[:, 1] + treated * tau
    learner = UpliftLearner(features=list("abcd"), seed=2).fit(X, retained, treated, offer)
    grid = np.column_stack([np.linspace(0.05, 0.95, 40), np.full((40, 3), 0.5)])
    common, rare = learner.predict(grid, [1, 2]).T
    assert np.corrcoef(rare, grid[:, 0])[0, 1] > 0.9
    assert (rare - common).mean() == pytest.approx(0.05, abs=0.03)


def test_noisy_outcomes_do_not_crowd_the_top_of_the_learned_uplift():
    """Half the customers order half the time (noisy outcomes), half almost never; the
    offer helps the quiet ones twice as much. Within each half the effect is flat, so
    what the learner spreads there is noise, and the noisy half's must not run wild."""
    rng = np.random.default_rng(1)
    n = 16_000
    X = rng.random((n, 4))
    quiet = X[:, 0] < 0.5
    treated = rng.random(n) < 0.5
    retained = rng.random(n) < np.where(quiet, 0.03, 0.5) + treated * np.where(quiet, 0.1, 0.05)
    learner = UpliftLearner(features=list("abcd"), seed=1).fit(X, retained, treated, np.ones(n))
    tau = learner.predict(X, [1])[:, 0]
    assert tau[~quiet].std() < 2.2 * tau[quiet].std()  # 2.5 unweighted
    assert quiet[np.argsort(-tau)[: n // 10]].mean() > 0.5


def test_uplift_becomes_the_response_best_offers_weighs_clipped_to_what_was_leaving():
    r = as_response(np.array([[0.1, -0.5, 0.9]]), np.array([0.5]))
    assert r.tolist() == [[0.2, -1.0, 1.0]]


def test_a_ranking_by_true_uplift_has_a_positive_auuc_and_a_random_one_does_not():
    rng = np.random.default_rng(2)
    n = 8000
    x = rng.random(n)
    treated = rng.random(n) < 0.5
    retained = rng.random(n) < 0.3 + treated * 0.3 * x
    good = qini(x, retained, treated, bootstrap=100)
    random = qini(rng.random(n), retained, treated, bootstrap=100)
    assert good.auuc_low > 0 and good.auuc_low <= good.auuc <= good.auuc_high
    assert random.auuc_low < 0 < random.auuc_high
    assert good.curve[0] == 0 and good.curve[-1] == pytest.approx(random.curve[-1])
    top = good.top[0.1]
    overall = retention_uplift(
        treated=int(treated.sum()),
        treated_retained=int((retained & treated).sum()),
        control=int((~treated).sum()),
        control_retained=int((retained & ~treated).sum()),
    )
    assert top.difference > overall.difference + 0.05
    k = 800
    order = np.argsort(-x, kind="stable")[:k]
    t, y = treated[order], retained[order]
    expected = retention_uplift(
        treated=int(t.sum()),
        treated_retained=int((y & t).sum()),
        control=int((~t).sum()),
        control_retained=int((y & ~t).sum()),
    )
    assert top.difference == pytest.approx(expected.difference)


def test_a_daily_look_for_eight_weeks_at_an_offer_that_does_nothing_says_keep_at_most_5pct():
    for per_day in (10, 60):
        for retention in (0.1, 0.4):
            rate = aa_false_helps(
                trials=4000, days=56, per_day=per_day, retention=retention, seed=per_day
            )
            assert rate <= 0.05


def test_the_same_daily_look_at_a_fixed_sample_interval_would_say_keep_too_often():
    # What the sequential interval protects against: the Wald interval, peeked at daily.
    rng = np.random.default_rng(0)
    trials, days, per_day = 2000, 56, 60
    n = np.arange(1, days + 1)[:, None] * per_day / 2
    yt = rng.binomial(per_day // 2, 0.4, (days, trials)).cumsum(axis=0)
    yc = rng.binomial(per_day // 2, 0.4, (days, trials)).cumsum(axis=0)
    pt, pc = yt / n, yc / n
    lo = pt - pc - 1.96 * np.sqrt(pt * (1 - pt) / n + pc * (1 - pc) / n)
    assert (lo > 0).any(axis=0).mean() > 0.05


def test_a_real_effect_is_kept_a_harmful_one_stopped_and_a_small_sample_waits():
    assert (
        campaign_sequential(
            treated=2000, treated_retained=900, control=2000, control_retained=700
        ).decision
        == KEEP
    )
    assert (
        campaign_sequential(
            treated=2000, treated_retained=500, control=2000, control_retained=700
        ).decision
        == STOP
    )
    small = campaign_sequential(treated=20, treated_retained=15, control=20, control_retained=2)
    assert small.decision == NOT_YET and small.low is None
    _, lo, hi = confidence_sequence(1000, 350, 1000, 300)
    wald = retention_uplift(treated=1000, treated_retained=350, control=1000, control_retained=300)
    assert lo < wald.ci_low and hi > wald.ci_high  # the price of looking every day


def test_the_qini_chart_names_its_auuc():
    rng = np.random.default_rng(5)
    result = qini(rng.random(500), rng.random(500) < 0.3, rng.random(500) < 0.5, bootstrap=20)
    svg = qini_chart(result)
    ET.fromstring(svg)
    assert "AUUC" in svg and "Random targeting" in svg
