"""Who responds to which offer, learned from finished interventions (numpy, scipy and
LightGBM; no Django, so it is testable alone).

Two layers, both fed by the randomised control arm (and the exploration share, which keeps
every offer tried on every kind of customer):

* :func:`effect_posterior`, per offer (and per segment): the treatment-minus-control
  difference in retention, Bayesian, shrunk toward the admin's prior. The control's
  retention ``c`` has a flat Beta prior; given ``c``, the treatment's retention has a Beta
  prior centred on ``c + (1 - c) * prior`` (the prior is the share of leaving customers
  the offer keeps) worth ``prior_strength`` customers. The joint posterior has no closed
  form, so it is sampled: draws of ``c`` from its own posterior are importance-weighted
  by the beta-binomial likelihood of the treated arm, then the treatment's retention is
  drawn from its conjugate posterior given ``c``. The effect may come out negative: an
  offer that drives customers away is learned as such.
* :class:`UpliftLearner`, per customer: an X-learner (Künzel et al. 2019) over all offers,
  the offer a feature, on the scoring features, with LightGBM. Written here instead of
  taken from ``causalml`` (which pins ``forestci``/``pathos`` and pulls xgboost, shap,
  statsmodels, matplotlib, seaborn and black at run time) or ``scikit-uplift`` (last
  release 2022): the learner is five gradient-boosted fits on top of the LightGBM this
  project already ships.

Both answer in the unit ``best_offers`` consumes: ``r``, the share of customers who would
not have ordered in the window whom the offer brings to order, ``uplift / (1 - baseline)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln

DRAWS = 20_000
MIN_ARM = 200  # customers per arm before an offer (or segment) gets its own estimate
MIN_MODEL_ARM = 400  # customers of an offer in each arm before a per-customer model
R_FLOOR = 0.02  # the smallest "would not order anyway" share r is divided by
VARIANCE_FLOOR = 0.02  # of a retained-or-not outcome, so near-certain ones do not dominate


@dataclass(frozen=True)
class Effect:
    """What an offer changed, posterior mean and 95% interval, in two units: ``effect``,
    retention in the window of the treated minus the control; ``response``, that as a
    share of the customers who would not have ordered (the prior's unit)."""

    treated: int
    treated_retained: int
    control: int
    control_retained: int
    prior: float
    prior_strength: float
    effect: float
    effect_low: float
    effect_high: float
    response: float
    response_low: float
    response_high: float
    p_helps: float
    baseline: float  # posterior mean of the control's retention

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _log_betabinom(k, n, a, b):
    """log P(k | n, Beta(a, b)) without the binomial coefficient (constant in a, b)."""
    return betaln(k + a, n - k + b) - betaln(a, b)


def effect_posterior(
    *,
    treated: int,
    treated_retained: int,
    control: int,
    control_retained: int,
    prior: float,
    prior_strength: float,
    draws: int = DRAWS,
    seed: int = 0,
) -> Effect:
    """The posterior of one offer's effect (see the module's docstring). With no data it
    is the prior; with thousands of customers per arm the data dominate. ``prior`` may be
    negative when it is a learned effect passed down to a segment."""
    if not -1 < prior < 1:
        raise ValueError("prior must be strictly between -1 and 1")
    if prior_strength <= 0:
        raise ValueError("prior_strength must be above 0")
    rng = np.random.default_rng(seed)
    c = rng.beta(1 + control_retained, 1 + control - control_retained, draws)
    mean = np.clip(c + (1 - c) * prior, 1e-4, 1 - 1e-4)
    a, b = prior_strength * mean, prior_strength * (1 - mean)
    log_w = _log_betabinom(treated_retained, treated, a, b)
    w = np.exp(log_w - log_w.max())
    pick = rng.choice(draws, size=draws, p=w / w.sum())
    c, a, b = c[pick], a[pick], b[pick]
    t = rng.beta(a + treated_retained, b + treated - treated_retained)
    effect = t - c
    response = effect / np.maximum(1 - c, R_FLOOR)
    lo, hi = np.quantile(effect, [0.025, 0.975])
    rlo, rhi = np.quantile(response, [0.025, 0.975])
    return Effect(
        treated=int(treated),
        treated_retained=int(treated_retained),
        control=int(control),
        control_retained=int(control_retained),
        prior=float(prior),
        prior_strength=float(prior_strength),
        effect=float(effect.mean()),
        effect_low=float(lo),
        effect_high=float(hi),
        response=float(response.mean()),
        response_low=float(rlo),
        response_high=float(rhi),
        p_helps=float((effect > 0).mean()),
        baseline=float(c.mean()),
    )


# Shallow and slow: retained-or-not is a noisy label, and the effects are differences of a
# few points between two of these fits.
_SHALLOW = dict(
    n_estimators=150,
    learning_rate=0.03,
    num_leaves=7,
    min_child_samples=200,
    reg_lambda=10.0,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    n_jobs=1,
    verbose=-1,
)


def _classifier(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, **_SHALLOW)


def _regressor(seed: int):
    from lightgbm import LGBMRegressor

    return LGBMRegressor(random_state=seed, **_SHALLOW)


def _precision(p: np.ndarray) -> np.ndarray:
    """Weights for imputed effects whose outcome is a coin with probability ``p``: the
    inverse of its variance, scaled to a mean of 1.

    A customer who orders every other week brings an imputed effect of variance near 0.25,
    one who left long ago near 0.02. Unweighted, the trees turned the first kind's noise
    into confident-looking differences, and ranking by them filled the top of the list
    with active customers whose learned uplift was well above their true one (the winner's
    curse). Inverse-variance weights are the efficient least-squares choice, and with them
    the ridge term shrinks a noisy leaf more than a quiet one."""
    w = 1.0 / np.maximum(p * (1 - p), VARIANCE_FLOOR)
    return w / w.mean()


class UpliftLearner:
    """X-learner over every offer at once, the offer one more feature: ``mu0`` (retention
    without an offer) on the control arm, ``mu1`` (retention with the offer) on the
    treated; the imputed effects ``y - mu0(x)`` of the treated and ``mu1(x, k) - y`` of the
    controls, each with the offer ``k`` recorded for them, are regressed on ``(x, k)`` and
    blended by Künzel's propensity weight.

    One model, not one per offer: most of what makes a customer respond (whether they
    would have ordered anyway, how engaged they are, a recent complaint) is the same for
    every offer, and a shared model learns it from every outcome, splitting on the offer
    where the data show a difference. Per-offer models left a rarely chosen offer with a
    few hundred outcomes whose noisy predictions then won the best-offer choice for many
    customers (the winner's curse over offers).

    Propensity: the randomised comparison for offer ``k`` is between the customers
    recorded with ``k`` (the best offer for them, or an explored one), split by the arm
    hash; so ``k``'s weight is the treated share among them, whatever the exploration.
    (Weighing ``k``'s treated against the whole control arm made it 4% for a rarely chosen
    offer, a propensity no customer had.)

    Offers with too few treated or control customers are left out (their column of
    :meth:`predict` is NaN, and the per-offer posterior stands in)."""

    FORMAT = 2  # of a pickled learner; one of another format is not loaded

    def __init__(self, *, features: Sequence[str], seed: int = 0) -> None:
        self.format = self.FORMAT
        self.features = list(features)
        self.seed = seed
        self.offers: list[int] = []
        self.propensity: dict[int, float] = {}  # P(treated | recorded with the offer)
        self._mu0 = None
        self._tau0 = None
        self._tau1 = None

    def _with_offer(self, X: np.ndarray, offer: np.ndarray) -> np.ndarray:
        return np.column_stack([X, offer[:, None] == np.array(self.offers)[None, :]])

    def fit(
        self, X: np.ndarray, retained: np.ndarray, treated: np.ndarray, offer: np.ndarray
    ) -> UpliftLearner:
        """``offer`` is the offer recorded for each customer: the one a treated customer
        got, or the one a control customer would have got."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(retained, dtype=float)
        treated = np.asarray(treated, dtype=bool)
        offer = np.asarray(offer)
        control = ~treated
        if control.sum() < MIN_MODEL_ARM:
            raise ValueError(f"need at least {MIN_MODEL_ARM} control customers")
        for k in np.unique(offer):
            mine, theirs = int((treated & (offer == k)).sum()), int((control & (offer == k)).sum())
            if min(mine, theirs) >= MIN_MODEL_ARM:
                self.propensity[int(k)] = mine / (mine + theirs)
        self.offers = sorted(self.propensity)
        if not self.offers:
            raise ValueError(f"need an offer with at least {MIN_MODEL_ARM} customers per arm")
        self._mu0 = _classifier(self.seed).fit(X[control], y[control])
        learned = np.isin(offer, self.offers)
        t, c = treated & learned, control & learned
        Z = self._with_offer(X, offer)
        mu1 = _classifier(self.seed + 1).fit(Z[t], y[t])
        d1 = y[t] - self._mu0.predict_proba(X[t])[:, 1]
        d0 = mu1.predict_proba(Z[c])[:, 1] - y[c]
        w1 = _precision(mu1.predict_proba(Z[t])[:, 1])
        w0 = _precision(self._mu0.predict_proba(X[c])[:, 1])
        self._tau1 = _regressor(self.seed + 2).fit(Z[t], d1, sample_weight=w1)
        self._tau0 = _regressor(self.seed + 3).fit(Z[c], d0, sample_weight=w0)
        return self

    def baseline(self, X: np.ndarray) -> np.ndarray:
        """Each customer's retention in the window without an offer."""
        return self._mu0.predict_proba(np.asarray(X, dtype=float))[:, 1]

    def predict(self, X: np.ndarray, offers: Sequence[int]) -> np.ndarray:
        """Uplift in retention, customers x ``offers``; NaN for offers not learned."""
        X = np.asarray(X, dtype=float)
        out = np.full((len(X), len(offers)), np.nan)
        for j, k in enumerate(offers):
            if int(k) in self.propensity:
                Z = self._with_offer(X, np.full(len(X), int(k)))
                g = self.propensity[int(k)]
                # Künzel's weight: the estimate from the larger arm's imputations counts more.
                out[:, j] = g * self._tau0.predict(Z) + (1 - g) * self._tau1.predict(Z)
        return out


def as_response(uplift: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Uplift as ``r``: the share of those who would not have ordered that the offer
    brings, in [-1, 1] (an offer cannot win back more than were leaving)."""
    room = np.maximum(1 - np.asarray(baseline, dtype=float), R_FLOOR)
    if room.ndim == 1:
        room = room[:, None]
    return np.clip(uplift / room, -1.0, 1.0)
