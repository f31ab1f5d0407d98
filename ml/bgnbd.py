"""BG/NBD buy-till-you-die model (Fader, Hardie & Lee 2005), fitted with numpy/scipy.

Kept in the project because the ``lifetimes`` package is unmaintained and breaks on current
pandas. Pure numerics, no Django: it takes per-customer arrays and returns arrays.

Per customer, with time in days since the first purchase:
``x`` repeat purchases, ``t_x`` time of the last purchase, ``T`` age at the cut-off.
Purchase rate ``λ ~ Gamma(r, α)`` (shape r, rate α); after every repeat purchase the
customer drops out with probability ``p ~ Beta(a, b)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

_EPS = 1e-10


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def _as_arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("BG/NBD needs x >= 0 and 0 <= t_x <= T for every customer")
    return x, t_x, T


def log_likelihood(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood (equation 6 of the paper, in log space for stability)."""
    x, t_x, T = _as_arrays(x, t_x, T)
    counts, position = np.unique(x, return_inverse=True)
    return _log_likelihood(params, x, t_x, T, counts, position)


def _log_likelihood(params: BGNBDParams, x, t_x, T, counts, position) -> np.ndarray:
    """The log-likelihood with its gamma-function terms, which depend on ``x`` alone,
    computed once per distinct count (``counts[position] == x``): the optimiser
    evaluates it hundreds of times on 200,000 customers with a few hundred counts."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = special.gammaln(r + counts) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + counts)
        - special.gammaln(b)
        - special.gammaln(a + b + counts)
    )
    gammas = (a1 + a2)[position]
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.full_like(x, -np.inf)
    xr = x[repeat]
    a4[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return gammas + np.logaddexp(a3, a4)


def fit(
    x, t_x, T, *, penalizer: float = 0.0, max_customers: int = 100_000, seed: int = 0
) -> BGNBDParams:
    """Maximum-likelihood parameters; optimised in log space so they stay positive.

    The four parameters describe the population, so beyond ``max_customers`` a fixed-seed
    random sample estimates them as well as everyone would (standard errors shrink with
    sqrt(n)) in a fraction of the time. Customers with identical (x, t_x, T) are collapsed
    and weighted.
    """
    x, t_x, T = _as_arrays(x, t_x, T)
    if x.size == 0:
        raise ValueError("cannot fit BG/NBD on zero customers")
    if x.size > max_customers:
        keep = np.random.default_rng(seed).choice(x.size, max_customers, replace=False)
        x, t_x, T = x[keep], t_x[keep], T[keep]
    rows = np.column_stack([x, np.round(t_x, 3), np.round(T, 3)])
    unique, weights = np.unique(rows, axis=0, return_counts=True)
    ux, ut_x, uT = unique[:, 0], unique[:, 1], unique[:, 2]
    counts, position = np.unique(ux, return_inverse=True)
    scale = max(float(np.mean(T)), 1.0)  # keeps α near 1 for the optimiser

    def negative_ll(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        params = BGNBDParams(r, alpha * scale, a, b)
        ll = _log_likelihood(params, ux, ut_x, uT, counts, position)
        return -(weights @ ll) / weights.sum() + penalizer * float(np.sum(np.exp(log_params) ** 2))

    best = None
    for start in ([0.0, 0.0, 0.0, 0.0], [-1.0, -1.0, -0.5, 0.5]):
        result = optimize.minimize(negative_ll, np.array(start), method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    r, alpha, a, b = np.exp(best.x)
    return BGNBDParams(float(r), float(alpha * scale), float(a), float(b))


def p_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """P(still active at T | history); exactly 1 for customers with no repeat purchase."""
    x, t_x, T = _as_arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = np.full_like(x, -np.inf)
    repeat = x > 0
    xr = x[repeat]
    log_odds_dead[repeat] = (
        np.log(a)
        - np.log(b + xr - 1)
        + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return special.expit(-log_odds_dead)


def p_no_purchase(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """P(no purchase in (T, T + horizon] | history): the churn probability this model implies.

    Alive customers keep their posterior rate Gamma(r + x, α + T); a dropped-out customer
    never buys again.
    """
    x, t_x, T = _as_arrays(x, t_x, T)
    alive = p_alive(params, x, t_x, T)
    return churn_probability(alive, params.r + x, params.alpha + T, horizon)


def churn_probability(alive, rate_shape, rate_scale, horizon) -> np.ndarray:
    """P(no purchase in the next ``horizon`` days) of a customer alive with probability
    ``alive`` whose purchase rate, if alive, is Gamma(``rate_shape``, ``rate_scale``):
    the posterior of :func:`p_no_purchase`, kept apart so ``ml.season`` can evaluate it at
    other horizons from stored columns."""
    none_if_alive = (rate_scale / (rate_scale + horizon)) ** rate_shape
    return 1.0 - alive * (1.0 - none_if_alive)


def expected_purchases(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """E[purchases in (T, T + horizon] | history] (equation 10 of the paper)."""
    x, t_x, T = _as_arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-6:  # the closed form has a removable singularity at a = 1
        a = 1.0 + 1e-6
    z = horizon / (alpha + T + horizon)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    numerator = (
        (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + horizon)) ** (r + x) * hyp)
    )
    return np.maximum(numerator * p_alive(BGNBDParams(r, alpha, a, b), x, t_x, T), 0.0)


def purchase_rate_if_alive(params: BGNBDParams, x, T) -> np.ndarray:
    """Posterior mean purchase rate per day of a customer who is still active: the
    rhythm at which they would keep buying if retained (value at risk uses it)."""
    return (params.r + np.asarray(x, dtype=float)) / (params.alpha + np.asarray(T, dtype=float))


def simulate(
    params: BGNBDParams, T: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for ``T`` days after their first purchase.

    Used to test that ``fit`` recovers known parameters; vectorised in rounds of one
    purchase per still-active customer.
    """
    T = np.asarray(T, dtype=float)
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        nxt = now[idx] + rng.exponential(1.0 / np.maximum(lam[idx], _EPS))
        bought = nxt <= T[idx]
        buyers = idx[bought]
        x[buyers] += 1
        t_x[buyers] = nxt[bought]
        now[buyers] = nxt[bought]
        active[idx[~bought]] = False
        dropped = buyers[rng.random(buyers.size) < p[buyers]]
        active[dropped] = False
    return x, t_x
