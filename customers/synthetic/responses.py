"""Each synthetic customer's true reaction to each offer type (heterogeneous effects).

``purchase_boost``: the probability that receiving the offer makes the customer place an
extra order within the response window. ``dropout_shock``: the probability that it makes
an active customer leave (over-contacted, insulted by a cheap offer). About half of the
customers do not react at all, most of the rest react positively with strengths that
depend on who they are, and a few react badly, so choosing the offer per customer pays
and a blanket campaign wastes money.

Drawn once per customer, these are the reactions of a customer still around. One who has
left (right after their last purchase) reads the shop's messages less the longer they are
gone: their boost is scaled by :func:`reach`, halving every ``reach_half_life`` days (a
parameter of the shop). Without it the customers surest to be gone were the most
persuadable of all (nothing to lose, everything to win back), the opposite of the lost
causes win-back campaigns meet, and targeting by churn risk alone was already close to
the best a learner could do.
"""

from __future__ import annotations

import numpy as np

from customers.models import OfferType


def draw_responses(
    rng: np.random.Generator,
    *,
    rate: np.ndarray,
    spend_level: np.ndarray,
    category_pref: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """offer type -> (purchase_boost, dropout_shock), one value per customer."""
    n = rate.size
    kind = rng.choice(3, size=n, p=[0.5, 0.42, 0.08])  # none, positive, negative responders
    strength = rng.beta(2.0, 5.0, n)  # typical positive effect ~0.29 before traits
    bargain = np.clip(1.4 - spend_level, 0.2, 1.5)  # low spenders like money off
    frequent = np.clip(rate / np.median(rate), 0.3, 2.5) ** 0.5
    focused = category_pref.max(axis=1)  # one dominant category: recommendations land
    affinity = {
        OfferType.PERCENT_OFF: 1.0 * bargain,
        OfferType.FIXED_AMOUNT: 0.8 * bargain,
        OfferType.FREE_SHIPPING: 0.6 * np.clip(spend_level, 0.5, 2.0),
        OfferType.LOYALTY_POINTS: 0.55 * frequent,
        OfferType.PRODUCT_RECOMMENDATION: 1.1 * focused,
    }
    result = {}
    for offer, weight in affinity.items():
        noise = rng.lognormal(0.0, 0.35, n)
        boost = np.where(kind == 1, np.clip(strength * weight * noise, 0, 0.8), 0.0)
        boost = np.where(kind == 2, 0.02 * noise, boost)
        shock = np.where(kind == 2, np.clip(rng.beta(2, 12, n) * weight, 0, 0.5), 0.0)
        result[offer.value] = (boost.round(4), shock.round(4))
    return result


def reach(days_gone: np.ndarray, *, half_life: float) -> np.ndarray:
    """The share of an offer's boost that still reaches a customer who left ``days_gone``
    days ago (NaN or negative: still around, reached fully; ``half_life`` 0: no fading)."""
    days = np.maximum(np.nan_to_num(np.asarray(days_gone, dtype=float), nan=0.0), 0.0)
    return np.exp2(-days / half_life) if half_life > 0 else np.ones_like(days)


def expected_effect(
    *,
    left: np.ndarray,
    none_if_around: np.ndarray,
    days_since_last: np.ndarray,
    boost: np.ndarray,
    shock: np.ndarray,
    half_life: float,
) -> np.ndarray:
    """An offer's true effect on the probability of an order in the window, given what the
    shop has observed (``left`` and ``none_if_around`` from
    :func:`customers.synthetic.truth.churn_parts`) and the customer's own reaction.

    A customer who left did so right after their last purchase, so ``days_since_last`` is
    how long they are gone; one still around orders anyway with ``1 - none_if_around``.
    Either may leave because of the offer (``shock``, which removes their later orders)
    before it brings an order."""
    around = 1 - np.asarray(none_if_around, dtype=float)
    gone = (1 - shock) * boost * reach(days_since_last, half_life=half_life)
    stays = (1 - shock) * (around + (1 - around) * boost) - around
    return left * gone + (1 - left) * stays
