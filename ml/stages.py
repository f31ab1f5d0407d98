"""Lifecycle stages: where a scored customer stands, in four words a shop's staff uses.

A churn probability says how likely the next horizon passes without an order; it does not
say whether the customer is still around at all. The stage combines it with the BG/NBD
probability that the purchase pattern is still active and with the days since the last
order, so that "no order for two years" is *lost* (worth an automatic, cheap win-back at
most), not a top case for an agent:

- **lost**: P(alive) below ``lost_below_p_alive``, or no order for ``lost_after_days``;
- **lapsing**: at risk, and no order for ``lapsing_after_days`` already;
- **at risk**: churn probability at least ``at_risk_from``;
- **active**: everyone else.

The thresholds live on the churn definition; this module is the numeric core (arrays in,
arrays out, no Django).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVE, AT_RISK, LAPSING, LOST = "active", "at_risk", "lapsing", "lost"
ORDER = (ACTIVE, AT_RISK, LAPSING, LOST)  # later is worse; rules compare stages this way


@dataclass(frozen=True)
class StageThresholds:
    at_risk_from: float
    lapsing_after_days: int
    lost_after_days: int
    lost_below_p_alive: float


def stages(
    thresholds: StageThresholds,
    *,
    probability: np.ndarray,
    p_alive: np.ndarray,
    recency_days: np.ndarray,
) -> np.ndarray:
    """Each customer's stage. A missing P(alive) or recency decides nothing (comparisons
    with NaN are false), so a customer without them is staged by probability alone."""
    probability = np.asarray(probability, dtype=float)
    p_alive = np.asarray(p_alive, dtype=float)
    recency = np.asarray(recency_days, dtype=float)
    with np.errstate(invalid="ignore"):
        lost = (p_alive < thresholds.lost_below_p_alive) | (recency >= thresholds.lost_after_days)
        at_risk = probability >= thresholds.at_risk_from
        lapsing = at_risk & (recency >= thresholds.lapsing_after_days)
    return np.select([lost, lapsing, at_risk], [LOST, LAPSING, AT_RISK], ACTIVE).astype("U7")
