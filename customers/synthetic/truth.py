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

Only what the shop records is evidence. A bare transaction log has no marks at all. When
events are recorded for a share of customers only, a customer without any event is
either untracked (no evidence) or tracked and quiet (evidence of leaving); the two are
weighed by their likelihoods, which needs the probability of no ticket and no review on
the earlier purchases too (``quiet``), since that no longer cancels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from customers.synthetic.process import Clock, Params


def churn_parts(
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
    events: np.ndarray | None = None,
    quiet: np.ndarray | None = None,
) -> np.ndarray:
    """Per customer, ``(left, none_if_around)``: the probability that they already left
    (right after their last purchase), and that of no paid purchase in ``[T, T + horizon)``
    if they are still around. :func:`churn_probability_of` combines them; an offer's true
    effect needs them apart, since it reaches the two kinds of customer differently.

    ``events`` (tickets and reviews seen by ``T``) and ``quiet``
    (:func:`quiet_log_likelihood`) are needed only when events are recorded for part of
    the customers (``0 < params.events_recorded < 1``).
    """
    T = np.broadcast_to(np.asarray(T, dtype=float), a.shape)
    S_a, S_x, S_T = clock.S(a), clock.S(t_x), clock.S(T)
    S_H = clock.S(T + horizon)
    p = params
    # log P(data, left after t_x) - log P(data, still around), term by term.
    log_odds = np.log(p.a / (p.b + x))  # Beta posterior of the dropout probability
    log_odds += (p.r + x) * (np.log(p.alpha + S_T - S_a) - np.log(p.alpha + S_x - S_a))
    if not p.transactions_only:
        q0, q1 = p.refund
        log_odds += np.where(refund_last, np.log(q1 / q0), np.log((1 - q1) / (1 - q0)))
    if not p.transactions_only and p.events_recorded > 0:
        # Sessions: around, rate σ throughout; left, σ until t_x then fading with τ.
        gap = T - t_x
        exposure_around = T - a
        exposure_left = (t_x - a) + p.tau * (1 - np.exp(-gap / p.tau))
        k0, k1 = p.ticket
        seen = np.clip(gap / p.ticket_delay, 0, 1)  # share of the ticket window observed
        marks = np.where(ticket_last, np.log(k1 / k0), np.log((1 - k1 * seen) / (1 - k0 * seen)))
        rating = np.asarray(rating_last, dtype=int)
        stay, leave = np.asarray(p.ratings_stay), np.asarray(p.ratings_leave)
        rated = np.maximum(rating, 1) - 1
        marks += np.where(rating > 0, np.log(leave[rated] / stay[rated]), 0.0)
        # σ ~ Gamma(k, β) integrated out.
        marks += -delay_after / p.tau + (p.k + sessions) * (
            np.log(p.beta + exposure_around) - np.log(p.beta + exposure_left)
        )
        if p.events_recorded < 1:
            if events is None or quiet is None:
                raise ValueError("events recorded for part of the customers need events and quiet")
            # No event at all: untracked (likelihood 1 either way) or tracked and quiet.
            untracked, tracked = np.log(1 - p.events_recorded), np.log(p.events_recorded)
            quiet_left = p.k * np.log(p.beta / (p.beta + exposure_left)) + np.log(1 - k1 * seen)
            quiet_around = p.k * np.log(p.beta / (p.beta + exposure_around)) + np.log(1 - k0 * seen)
            mixed = np.logaddexp(untracked, tracked + quiet + quiet_left) - np.logaddexp(
                untracked, tracked + quiet + quiet_around
            )
            marks = np.where((sessions == 0) & (events == 0), mixed, marks)
        log_odds += marks

    none_if_around = ((p.alpha + S_T - S_a) / (p.alpha + S_H - S_a)) ** (p.r + x)
    return expit(log_odds), none_if_around


def quiet_log_likelihood(
    params: Params,
    *,
    x: np.ndarray,
    T: float,
    owner: np.ndarray,
    order_time: np.ndarray,
    is_last: np.ndarray,
) -> np.ndarray:
    """log P(no ticket seen on any purchase before the last and no review seen on any
    purchase, by ``T`` | events recorded), per customer with ``x`` repeat purchases.

    The orders (``owner`` indexes ``x``) need only include those within the longest
    delay before ``T``: older ones are fully observed and counted through ``x``.
    """
    p = params
    k0, review = p.ticket[0], p.review
    base = x * np.log(1 - k0) + (x + 1) * np.log(1 - review)
    seen_ticket = np.clip((T - order_time) / p.ticket_delay, 0, 1)
    seen_review = np.clip((T - order_time) / p.review_delay, 0, 1)
    partly = np.where(is_last, 0.0, np.log(1 - k0 * seen_ticket) - np.log(1 - k0))
    partly += np.log(1 - review * seen_review) - np.log(1 - review)
    return base + np.bincount(owner, weights=partly, minlength=x.size)


def churn_parts_of(
    summary: pd.DataFrame, params: Params, clock: Clock, *, T: float, horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`churn_parts` for a frame of per-customer summaries (times in days since the
    shop's start), as both the generator and the database reader build them."""
    partly_tracked = {
        name: summary[name].to_numpy(float) for name in ("events", "quiet") if name in summary
    }
    return churn_parts(
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
        **partly_tracked,
    )


def churn_probability_of(
    summary: pd.DataFrame, params: Params, clock: Clock, *, T: float, horizon: float
) -> np.ndarray:
    """P(no paid purchase in ``[T, T + horizon)``) for a frame of per-customer summaries."""
    left, none_if_around = churn_parts_of(summary, params, clock, T=T, horizon=horizon)
    return left + (1 - left) * none_if_around
