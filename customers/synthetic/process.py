"""The generating process of the synthetic shop, in numpy only (no Django).

A heterogeneous buy-till-you-die core with marks that depend on the hidden state:

* Customer i signs up at a_i with a first paid purchase. Paid purchases follow a Poisson
  process with rate λ_i ~ Gamma(r, α) in *operational time* S(t), the cumulative shop
  intensity (yearly season with a December peak and summer dip, times a weekday cycle,
  mean 1), so seasonality shapes when people buy without changing how many.
* After every paid purchase (the first included) the customer leaves with probability
  p_i ~ Beta(a, b) and never buys again.
* The purchase after which a customer leaves is different: it is more often accompanied
  by a refunded or cancelled order, followed by a support ticket, and reviewed badly.
* Browsing sessions (a visit, with product views, add-to-cart and logins) arrive at rate
  σ_i ~ Gamma(k, β) while the customer is around and fade with time constant τ after
  they leave, so activity thins out before the absence of orders shows it.

What the shop records is part of the process too, because a model (and the truth) can
only condition on what was recorded: a bare transaction log keeps paid orders only, and
a shop whose tracking misses some customers records no events at all for a random share
of them. ``REGIMES`` names the shops the robustness bench judges models on.

Everything needed to compute the exact posterior from observable data lives in
``Params``; ``customers.synthetic.truth`` does that computation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

RATINGS = np.arange(1, 6)


@dataclass(frozen=True)
class Params:
    # Purchase rate λ ~ Gamma(shape r, rate α) per unit of operational time (≈ days).
    r: float = 0.9
    alpha: float = 30.0
    # Dropout after each paid purchase p ~ Beta(a, b).
    a: float = 1.0
    b: float = 5.0
    # Session rate σ ~ Gamma(shape k, rate beta) per day while around; fades with tau days.
    k: float = 2.0
    beta: float = 25.0
    tau: float = 14.0
    # Marks of a purchase: (if the customer stays, if they leave after it).
    refund: tuple[float, float] = (0.04, 0.20)
    ticket: tuple[float, float] = (0.03, 0.25)
    review: float = 0.35
    ratings_stay: tuple[float, ...] = (0.03, 0.05, 0.12, 0.35, 0.45)
    ratings_leave: tuple[float, ...] = (0.28, 0.25, 0.20, 0.15, 0.12)
    # Delays after the purchase (days, uniform) for tickets and reviews.
    ticket_delay: float = 3.0
    review_delay: float = 7.0
    # Shop shape. Holiday peaks add Gaussian bumps (day of year, width in days, height
    # relative to the mean day) to the season; the intensity is rescaled to mean 1.
    season_amplitude: float = 0.25
    holidays: tuple[tuple[float, float, float], ...] = ()
    weekday: tuple[float, ...] = (1.05, 1.0, 1.0, 1.0, 1.05, 0.9, 1.0)
    acquisition_growth: float = 1.0  # signups at the end vs the start of the window, e^g
    categories: int = 10
    products: int = 300
    horizon_days: int = 90
    # What is recorded: only paid orders (no products, lines, refunds or events), or
    # everything, with events recorded for this share of customers (the rest have none).
    transactions_only: bool = False
    events_recorded: float = 1.0
    # Offers: one reaches a customer gone this many days with half its strength (0: no
    # fading, a customer gone for years as persuadable as one still around).
    reach_half_life: float = 180.0
    extras: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict) -> Params:
        """The inverse of :meth:`as_dict` after a JSON round trip (lists back to tuples)."""

        def tupled(value):
            return tuple(tupled(v) for v in value) if isinstance(value, list) else value

        return cls(**{k: tupled(v) for k, v in stored.items()})


# Shops in different regimes, for judging models beyond the default shop. The mean
# purchase rate r/α and the mean dropout stay the default's unless the regime is about them.
REGIMES: dict[str, Params] = {
    "default": Params(),
    "transactions": Params(transactions_only=True),
    "heterogeneous": Params(r=0.3, alpha=10.0),
    "seasonal": Params(season_amplitude=0.5, holidays=((332.0, 2.0, 4.0), (354.0, 6.0, 1.5))),
    "missing_events": Params(events_recorded=2 / 3),
}


@dataclass
class Clock:
    """Operational time on a daily grid from day 0 (the shop's start) on."""

    start_weekday: int
    start_day_of_year: int
    intensity: np.ndarray  # per day, mean 1 over whole years
    cumulative: np.ndarray  # S at the start of each day; len = days + 1

    @classmethod
    def build(cls, params: Params, *, days: int, start_weekday: int, start_day_of_year: int):
        d = np.arange(days)
        day_of_year = (start_day_of_year + d) % 365.25
        season = 1 + params.season_amplitude * np.cos(2 * np.pi * (day_of_year - 350) / 365.25)
        for day, width, height in params.holidays:
            gap = (day_of_year - day + 365.25 / 2) % 365.25 - 365.25 / 2
            season = season + height * np.exp(-0.5 * (gap / width) ** 2)
        # Each bump adds its area to a year; dividing by the yearly mean keeps it 1.
        season = season / (
            1 + sum(h * w * np.sqrt(2 * np.pi) for _, w, h in params.holidays) / 365.25
        )
        weekday = np.asarray(params.weekday) / np.mean(params.weekday)
        intensity = season * weekday[(start_weekday + d) % 7]
        return cls(
            start_weekday, start_day_of_year, intensity, np.concatenate([[0], np.cumsum(intensity)])
        )

    def S(self, t: np.ndarray) -> np.ndarray:
        """Operational time at fractional day ``t`` (exact for a piecewise-constant rate)."""
        return np.interp(t, np.arange(self.cumulative.size), self.cumulative)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.cumulative, np.arange(self.cumulative.size))


@dataclass
class Shop:
    """Everything generated, as flat numpy arrays (customer index ``0..n-1``)."""

    params: Params
    clock: Clock
    days: int
    signup: np.ndarray
    rate: np.ndarray
    dropout: np.ndarray
    session_rate: np.ndarray
    spend_level: np.ndarray
    left_at: np.ndarray  # day of the purchase after which they left; NaN if still around
    category_pref: np.ndarray
    # Paid purchases.
    order_customer: np.ndarray
    order_time: np.ndarray
    order_leaves: np.ndarray  # True for the purchase after which the customer left
    order_refund: np.ndarray  # a refunded/cancelled order accompanies it
    order_ticket_time: np.ndarray  # NaN when no ticket (or after the window)
    order_review_time: np.ndarray
    order_rating: np.ndarray
    # Sessions.
    session_customer: np.ndarray
    session_time: np.ndarray


def _purchases(rng, clock: Clock, signup, rate, dropout, end: float):
    """Paid purchase times per customer, in rounds of one purchase per active customer."""
    n = signup.size
    u = clock.S(signup)
    u_end = clock.S(np.array([end]))[0]
    active = np.ones(n, dtype=bool)
    who, when, leaves = [], [], []
    left_at = np.full(n, np.nan)
    while active.any():
        idx = np.flatnonzero(active)
        who.append(idx)
        when.append(clock.inverse(u[idx]))
        leaving = rng.random(idx.size) < dropout[idx]
        leaves.append(leaving)
        left_at[idx[leaving]] = when[-1][leaving]
        active[idx[leaving]] = False
        idx = idx[~leaving]
        u[idx] += rng.exponential(1.0 / rate[idx])
        active[idx[u[idx] >= u_end]] = False
    return np.concatenate(who), np.concatenate(when), np.concatenate(leaves), left_at


def _sessions(rng, params: Params, signup, left_at, session_rate, end: float):
    """Sessions at rate σ while around, fading as e^{-(t-d)/τ} after leaving at d."""
    around_until = np.maximum(np.where(np.isnan(left_at), end, left_at), signup)
    steady = rng.poisson(session_rate * (around_until - signup))
    owner = np.repeat(np.arange(signup.size), steady)
    times = signup[owner] + rng.random(owner.size) * (around_until - signup)[owner]
    gone = np.flatnonzero(~np.isnan(left_at))
    span = end - left_at[gone]
    mass = 1 - np.exp(-span / params.tau)
    fading = rng.poisson(session_rate[gone] * params.tau * mass)
    fade_owner = np.repeat(gone, fading)
    # Inverse CDF of the truncated exponential decay on [0, span].
    v = rng.random(fade_owner.size) * np.repeat(mass, fading)
    fade_times = left_at[fade_owner] - params.tau * np.log1p(-v)
    return np.concatenate([owner, fade_owner]), np.concatenate([times, fade_times])


def simulate(
    params: Params,
    *,
    customers: int,
    days: int,
    start_weekday: int,
    start_day_of_year: int,
    rng: np.random.Generator,
) -> Shop:
    end = float(days)
    clock = Clock.build(
        params,
        days=days + 2 * 366,
        start_weekday=start_weekday,
        start_day_of_year=start_day_of_year,
    )
    # Signups over the window, growing: density ∝ exp(g t / days), by inverse CDF.
    g = params.acquisition_growth
    v = rng.random(customers)
    signup = days * np.log1p(v * np.expm1(g)) / g if g else v * days
    signup = np.sort(signup)
    rate = rng.gamma(params.r, 1.0 / params.alpha, customers)
    dropout = rng.beta(params.a, params.b, customers)
    session_rate = rng.gamma(params.k, 1.0 / params.beta, customers)
    spend_level = rng.lognormal(0.0, 0.45, customers)
    category_pref = rng.dirichlet(np.full(params.categories, 0.4), customers)

    who, when, leaves, left_at = _purchases(rng, clock, signup, rate, dropout, end)
    order = np.lexsort((when, who))
    who, when, leaves = who[order], when[order], leaves[order]
    li = leaves.astype(int)
    refund = rng.random(who.size) < np.asarray(params.refund)[li]
    ticket = rng.random(who.size) < np.asarray(params.ticket)[li]
    ticket_time = np.where(ticket, when + rng.random(who.size) * params.ticket_delay, np.nan)
    reviewed = rng.random(who.size) < params.review
    review_time = np.where(reviewed, when + rng.random(who.size) * params.review_delay, np.nan)
    cum = np.cumsum(np.stack([params.ratings_stay, params.ratings_leave]), axis=1)
    rating = 1 + (rng.random(who.size)[:, None] > cum[li]).sum(axis=1)
    rating = np.minimum(rating, 5)
    # Nothing is observed after the end of the window.
    ticket_time[ticket_time >= end] = np.nan
    review_time[review_time >= end] = np.nan

    s_owner, s_time = _sessions(rng, params, signup, left_at, session_rate, end)
    keep = s_time < end
    # Unrecorded marks are dropped here, so every array below is what the shop's data shows.
    if params.transactions_only:
        recorded = np.zeros(customers, dtype=bool)
        refund[:] = False
    elif params.events_recorded < 1:
        recorded = rng.random(customers) < params.events_recorded
    else:
        recorded = np.ones(customers, dtype=bool)
    keep &= recorded[s_owner]
    ticket_time[~recorded[who]] = np.nan
    review_time[~recorded[who]] = np.nan
    return Shop(
        params=params,
        clock=clock,
        days=days,
        signup=signup,
        rate=rate,
        dropout=dropout,
        session_rate=session_rate,
        spend_level=spend_level,
        left_at=left_at,
        category_pref=category_pref,
        order_customer=who,
        order_time=when,
        order_leaves=leaves,
        order_refund=refund,
        order_ticket_time=ticket_time,
        order_review_time=review_time,
        order_rating=rating,
        session_customer=s_owner[keep],
        session_time=s_time[keep],
    )
