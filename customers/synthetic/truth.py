"""The exact churn probability the generating process implies, from observable history.

This is the Bayes-optimal prediction: it knows the process and its population parameters
but, like any model, not a customer's latent rates (they are integrated out) and not
whether they already left. Per customer it needs only what the shop's data shows up to
the cut-off ``T`` (days since the shop's start):

* ``a`` first purchase, ``x`` repeat purchases, ``t_x`` last purchase;
* the marks of the last purchase observed by ``T``: a refunded/cancelled order with it,
  a support ticket about it, its review rating (0 = none);
* sessions since the first purchase and, after ``t_x``, their number and total delay.

Two hypotheses explain the data: the customer left right after the last purchase, or is
still around and simply has not bought since. Everything before the last purchase is
equally likely under both (the customer evidently stayed), so it cancels except through
the Gamma/Beta posteriors, which have closed forms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from customers.synthetic.process import Clock, Params


def churn_probability(
    params: Params,
    clock: Clock,
    *,
    a: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: float | np.ndarray,
    refund_last: np.ndarray,
    ticket_last: np.ndarray,
    rating_last: np.ndarray,
    sessions: np.ndarray,
    sessions_after: np.ndarray,
    delay_after: np.ndarray,
    horizon: float,
) -> np.ndarray:
    """P(no paid purchase in [T, T + horizon)) for each customer."""
    T = np.broadcast_to(np.asarray(T, dtype=float), a.shape)
    S_a, S_x, S_T = clock.S(a), clock.S(t_x), clock.S(T)
    S_H = clock.S(T + horizon)
    p = params
    # log P(data, left after t_x) - log P(data, still around), term by term.
    log_odds = np.log(p.a / (p.b + x))  # Beta posterior of the dropout probability
    log_odds += (p.r + x) * (np.log(p.alpha + S_T - S_a) - np.log(p.alpha + S_x - S_a))

    q0, q1 = p.refund
    log_odds += np.where(refund_last, np.log(q1 / q0), np.log((1 - q1) / (1 - q0)))
    k0, k1 = p.ticket
    seen = np.clip((T - t_x) / p.ticket_delay, 0, 1)  # share of the ticket window observed
    log_odds += np.where(ticket_last, np.log(k1 / k0), np.log((1 - k1 * seen) / (1 - k0 * seen)))
    rating = np.asarray(rating_last, dtype=int)
    stay, leave = np.asarray(p.ratings_stay), np.asarray(p.ratings_leave)
    rated = rating > 0
    log_odds += np.where(
        rated, np.log(leave[np.maximum(rating, 1) - 1] / stay[np.maximum(rating, 1) - 1]), 0.0
    )
    # Sessions: around, rate σ throughout; left, σ until t_x then fading with τ. σ ~ Gamma.
    gap = T - t_x
    exposure_around = T - a
    exposure_left = (t_x - a) + p.tau * (1 - np.exp(-gap / p.tau))
    log_odds += -delay_after / p.tau + (p.k + sessions) * (
        np.log(p.beta + exposure_around) - np.log(p.beta + exposure_left)
    )

    left = expit(log_odds)
    none_if_around = ((p.alpha + S_T - S_a) / (p.alpha + S_H - S_a)) ** (p.r + x)
    return left + (1 - left) * none_if_around


def churn_probability_of(
    summary: pd.DataFrame, params: Params, clock: Clock, *, T: float, horizon: float
) -> np.ndarray:
    """:func:`churn_probability` for a frame of per-customer summaries (times in days
    since the shop's start), as both the generator and the database reader build them."""
    return churn_probability(
        params,
        clock,
        a=summary["a"].to_numpy(float),
        x=summary["x"].to_numpy(float),
        t_x=summary["t_x"].to_numpy(float),
        T=T,
        refund_last=summary["refund_last"].to_numpy(bool),
        ticket_last=summary["ticket_last"].to_numpy(bool),
        rating_last=summary["rating_last"].to_numpy(int),
        sessions=summary["sessions"].to_numpy(float),
        sessions_after=summary["sessions_after"].to_numpy(float),
        delay_after=summary["delay_after"].to_numpy(float),
        horizon=horizon,
    )
