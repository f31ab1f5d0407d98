"""Which offer each targeted customer gets, by expected net value, vectorised.

For a customer with churn probability ``p``, value at risk ``V`` (``p`` times the spend
expected if they stay) and an offer that keeps a share ``r`` of leaving customers:

    expected net value = V * r - face_cost * (1 - p + p * r)

``V * r`` is the spend the offer wins back. The discount is paid by everyone who orders
with it, including the customers who would have ordered anyway (``1 - p``), which is why
a generous discount to a loyal customer loses money and this formula says so.

``r`` starts as the admin's prior per offer and is then learned per customer and offer
from the control arm (``retention.learning``); it is negative for customers an offer
drives away, whom the formula then leaves alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from customers.models import OfferType


@dataclass(frozen=True)
class OfferOption:
    id: int
    offer_type: str
    value: float
    unit_cost: float
    min_order_value: float
    expected_response: float

    @classmethod
    def of(cls, offer) -> OfferOption:
        return cls(
            offer.pk,
            offer.offer_type,
            float(offer.value),
            float(offer.unit_cost),
            float(offer.min_order_value),
            offer.expected_response,
        )


PERCENT_RANGE = (
    "the percentage off must be a number above 0 and at most {limit}, with at most two decimals"
)
AMOUNT_RANGE = (
    "the amount off must be a number above 0 and at most {limit}, with at most two decimals"
)
POINTS_RANGE = "the loyalty points must be a whole number from 1 to {limit}"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ValueRange:
    """The values an offer of one kind may carry in one campaign: above 0, at most
    ``limit``, in steps of ``step`` (a cent, or one point). Its text names the range, so a
    refusal tells the agent what to send instead."""

    text: str
    limit: Decimal
    step: Decimal

    def __str__(self) -> str:
        return self.text.format(limit=f"{self.limit.normalize():f}")

    def parse(self, raw: object) -> Decimal:
        """``raw`` (text from a chat or a form, or a number) as a value in the range, or
        ValueError naming the range. NaN, infinities and sub-cent values are refused
        rather than stored rounded, and nothing raw is compared before it is a finite
        Decimal (comparing NaN raises)."""
        try:
            value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(str(self)) from None
        if not value.is_finite() or not 0 < value <= self.limit or value % self.step:
            raise ValueError(str(self))
        return value.quantize(self.step)


def value_range(
    offer_type: str, *, max_percent_off: Decimal, max_fixed_amount: Decimal, max_loyalty_points: int
) -> ValueRange | None:
    """What a campaign allows an offer of ``offer_type`` to be worth; None for kinds that
    carry no value (free shipping, product picks)."""
    match offer_type:
        case OfferType.PERCENT_OFF:
            return ValueRange(PERCENT_RANGE, min(Decimal(max_percent_off), Decimal(100)), CENT)
        case OfferType.FIXED_AMOUNT:
            return ValueRange(AMOUNT_RANGE, Decimal(max_fixed_amount), CENT)
        case OfferType.LOYALTY_POINTS:
            return ValueRange(POINTS_RANGE, Decimal(max_loyalty_points), Decimal(1))
    return None


def within_limits(
    options: Sequence[OfferOption],
    *,
    max_percent_off: Decimal,
    max_fixed_amount: Decimal,
    max_loyalty_points: int,
) -> list[OfferOption]:
    """The options a campaign's limits allow, so proposals never exceed what an agent
    could have set by hand."""
    allowed = []
    for option in options:
        limits = value_range(
            option.offer_type,
            max_percent_off=max_percent_off,
            max_fixed_amount=max_fixed_amount,
            max_loyalty_points=max_loyalty_points,
        )
        if limits is None or option.value <= float(limits.limit):
            allowed.append(option)
    return allowed


def face_cost(option: OfferOption, order_value: np.ndarray) -> np.ndarray:
    """What the shop gives away if the customer uses the offer on a typical order."""
    basket = np.maximum(np.nan_to_num(order_value), option.min_order_value)
    match option.offer_type:
        case OfferType.PERCENT_OFF:
            return basket * option.value / 100
        case OfferType.FIXED_AMOUNT:
            return np.full_like(basket, option.value)
        case OfferType.LOYALTY_POINTS:
            return np.full_like(basket, option.value * option.unit_cost)
        case _:  # free shipping, product recommendation: a fixed cost per use (maybe 0)
            return np.full_like(basket, option.unit_cost)


@dataclass
class Choice:
    index: np.ndarray  # position in ``options`` of each customer's best offer
    net_value: np.ndarray
    cost: np.ndarray  # face cost of the chosen offer


def net_values(
    options: Sequence[OfferOption],
    *,
    probability: np.ndarray,
    value_at_risk: np.ndarray,
    order_value: np.ndarray,
    response: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected net value and face cost of every offer for every customer (customers x
    offers). ``response`` is ``r`` per customer and offer, as learned from the control
    arm (``retention.selectors.offer_responses``); without it, each offer's prior."""
    p = np.clip(np.nan_to_num(probability), 0, 1)[:, None]
    v = np.nan_to_num(value_at_risk)[:, None]
    if response is None:
        r = np.array([o.expected_response for o in options])[None, :]
    else:
        r = np.nan_to_num(np.asarray(response, dtype=float))
    costs = np.column_stack([face_cost(o, order_value) for o in options])
    # A negative r (the offer drives customers away) also means fewer redeem it.
    net = v * r - costs * np.clip(1 - p + p * r, 0, 1)
    return net, costs


def best_offers(
    options: Sequence[OfferOption],
    *,
    probability: np.ndarray,
    value_at_risk: np.ndarray,
    order_value: np.ndarray,
    response: np.ndarray | None = None,
) -> Choice:
    """Each customer's offer with the highest expected net value (customers x offers)."""
    net, costs = net_values(
        options,
        probability=probability,
        value_at_risk=value_at_risk,
        order_value=order_value,
        response=response,
    )
    index = net.argmax(axis=1)
    rows = np.arange(len(index))
    return Choice(index=index, net_value=net[rows, index], cost=costs[rows, index])


def stable_unit(campaign_id: int, customer_ids: np.ndarray, *, salt: int = 0) -> np.ndarray:
    """A number in [0, 1) fixed for each (campaign, customer): splitmix64 of the pair.

    Arm assignment must not change when a night is re-run or the customer is targeted
    again, and must not correlate across campaigns; a seeded hash gives both, in numpy.
    ``salt`` gives further draws independent of the arm's (exploration, its offer).
    """
    z = (np.uint64(campaign_id) << np.uint64(32)) ^ customer_ids.astype(np.uint64)
    z = z ^ (np.uint64(salt) << np.uint64(56))
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
