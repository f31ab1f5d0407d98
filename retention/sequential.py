"""An answer about a campaign that stays valid however often it is looked at (numpy only).

A fixed-sample interval checked every day and acted on the first day it excludes zero
says "helps" far more often than 5% when nothing helps. This uses the always-valid
confidence sequence of the mixture sequential probability ratio test (Robbins 1970;
Johari, Pekelis and Walsh, "Always valid inference", 2017): for a difference of two
retention rates ``d`` with estimated variance ``v``, mixing over effects with a normal
prior of scale ``tau`` gives the interval

    d +/- sqrt( v (v + tau^2) / tau^2 * (2 log(1/alpha) + log((v + tau^2) / v)) )

which holds at every look at once, with probability 1 - alpha. It is wider than the
fixed-sample interval, the price of looking daily. ``tau`` is the size of effect the test
is tuned to find soonest; any effect is found eventually.

Only customers whose response window has closed count, so a look never sees half an
outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retention.uplift import MIN_ARM

ALPHA = 0.05
TAU = 0.05
KEEP, STOP, NOT_YET = "keep", "stop", "not yet"
SAYS = {
    KEEP: "keep: the offer helps ({lo:+.1%} to {hi:+.1%}, valid under daily looks)",
    STOP: "stop: the offer does not help ({lo:+.1%} to {hi:+.1%}, valid under daily looks)",
    NOT_YET: "not yet: {lo:+.1%} to {hi:+.1%} still includes no effect",
}
TOO_FEW = "not yet: fewer than {arm} finished customers per arm"


@dataclass(frozen=True)
class Sequential:
    difference: float | None
    low: float | None
    high: float | None
    decision: str
    verdict: str


def confidence_sequence(
    treated, treated_retained, control, control_retained, *, alpha: float = ALPHA, tau: float = TAU
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference in retention and its always-valid interval; array arguments broadcast
    (a simulation passes days x trials). Rates are smoothed by half a customer each way
    so an arm with no retained customer still has a variance."""
    nt, yt = np.asarray(treated, dtype=float), np.asarray(treated_retained, dtype=float)
    nc, yc = np.asarray(control, dtype=float), np.asarray(control_retained, dtype=float)
    pt = (yt + 0.5) / (nt + 1)
    pc = (yc + 0.5) / (nc + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = yt / nt - yc / nc
        v = pt * (1 - pt) / nt + pc * (1 - pc) / nc
        t2 = tau * tau
        half = np.sqrt(v * (v + t2) / t2 * (2 * np.log(1 / alpha) + np.log((v + t2) / v)))
    return d, d - half, d + half


def decide(low, high):
    """keep (the interval is above zero), stop (below or at zero), or not yet."""
    return np.where(low > 0, KEEP, np.where(high <= 0, STOP, NOT_YET))


def campaign_sequential(
    *, treated: int, treated_retained: int, control: int, control_retained: int
) -> Sequential:
    if min(treated, control) < MIN_ARM:
        return Sequential(None, None, None, NOT_YET, TOO_FEW.format(arm=MIN_ARM))
    d, lo, hi = (
        float(x) for x in confidence_sequence(treated, treated_retained, control, control_retained)
    )
    decision = str(decide(lo, hi))
    return Sequential(d, lo, hi, decision, SAYS[decision].format(lo=lo, hi=hi))


def aa_false_helps(
    *,
    trials: int,
    days: int,
    per_day: int,
    retention: float,
    control_share: float = 0.5,
    seed: int = 0,
) -> float:
    """Share of A/A campaigns (treatment does nothing) that are ever called "keep" when
    looked at every day for ``days`` days, ``per_day`` customers finishing their window
    each day. Vectorised over trials: the acceptance test and the benchmark both use it."""
    rng = np.random.default_rng(seed)
    nc_day = rng.binomial(per_day, control_share, size=(days, trials))
    nt_day = per_day - nc_day
    yt = rng.binomial(nt_day, retention).cumsum(axis=0)
    yc = rng.binomial(nc_day, retention).cumsum(axis=0)
    nt, nc = nt_day.cumsum(axis=0), nc_day.cumsum(axis=0)
    _, lo, _ = confidence_sequence(nt, yt, nc, yc)
    looked = np.minimum(nt, nc) >= MIN_ARM
    return float(((lo > 0) & looked).any(axis=0).mean())
