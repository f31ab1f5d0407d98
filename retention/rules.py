"""Rule conditions: parsed from rows into plain values and evaluated on a whole scoring
run at once with numpy, never with ``eval``.

A condition reads one field of the run's frame (a feature, ``probability``,
``expected_spend``, ``value_at_risk``, ``tier`` or ``stage``) and compares it with a constant, with
the shop's average of that field in the same run, or with another field of the same
customer ("days since the last order > days since the last review"). A missing value
(never logged in, never reviewed) matches nothing: a rule about logins says nothing about
customers who never log in.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml import stages
from ml.features import FEATURES
from ml.models import TIER_ORDER

SCORE_FIELDS = {
    "probability": "churn probability (0-1)",
    "expected_spend": "expected spend in the horizon if retained",
    "value_at_risk": "churn probability times expected spend",
    "tier": "risk tier (low < medium < high)",
    "stage": "lifecycle stage (active < at_risk < lapsing < lost)",
}
FIELDS: dict[str, str] = {**SCORE_FIELDS, **FEATURES}
TIER_RANK = {tier: rank for rank, tier in enumerate(TIER_ORDER)}
STAGE_RANK = {stage: rank for rank, stage in enumerate(stages.ORDER)}
# Fields compared by rank, with the words a condition may name.
RANKED = {"tier": TIER_RANK, "stage": STAGE_RANK}

OPERATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}


class InvalidCondition(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    compare_to: str = "value"
    value: float | None = None
    other_field: str = ""


def field_choices() -> list[tuple[str, str]]:
    return [(name, f"{name}: {meaning}") for name, meaning in FIELDS.items()]


def condition_of(row) -> Condition:
    """A validated :class:`Condition` from a ``RuleCondition`` (or anything with its
    attributes); raises :class:`InvalidCondition` naming the bad attribute."""
    if row.field not in FIELDS:
        raise InvalidCondition("field", f"unknown field {row.field!r}")
    if row.operator not in OPERATORS:
        raise InvalidCondition("operator", f"unknown operator {row.operator!r}")
    if row.compare_to == "shop_average":
        if row.field in RANKED:
            raise InvalidCondition("compare_to", f"a {row.field} has no average")
        return Condition(row.field, row.operator, "shop_average")
    if row.compare_to == "field":
        if row.other_field not in FIELDS or {row.field, row.other_field} & set(RANKED):
            raise InvalidCondition("other_field", f"not a numeric field: {row.other_field!r}")
        return Condition(row.field, row.operator, "field", other_field=row.other_field)
    if row.compare_to != "value":
        raise InvalidCondition("compare_to", f"unknown comparison {row.compare_to!r}")
    text = str(row.value).strip().lower()
    if row.field in RANKED:
        ranks = RANKED[row.field]
        text = text.replace(" ", "_")  # "at risk" as the admin writes it
        if text not in ranks:
            raise InvalidCondition("value", f"a {row.field} is one of {', '.join(ranks)}")
        return Condition(row.field, row.operator, value=float(ranks[text]))
    try:
        number = float(text)
    except ValueError:
        raise InvalidCondition("value", f"{row.value!r} is not a number") from None
    if not np.isfinite(number):
        raise InvalidCondition("value", f"{row.value!r} is not a finite number")
    return Condition(row.field, row.operator, value=number)


def _column(frame: pd.DataFrame, field: str) -> np.ndarray:
    if field in RANKED:
        return frame[field].map(RANKED[field]).to_numpy(dtype=float)
    return frame[field].to_numpy(dtype=float)


def matches(frame: pd.DataFrame, conditions: Sequence[Condition]) -> np.ndarray:
    """Boolean mask over ``frame``'s rows matching every condition (no condition: none)."""
    if not conditions:
        return np.zeros(len(frame), dtype=bool)
    mask = np.ones(len(frame), dtype=bool)
    with np.errstate(invalid="ignore"):
        for c in conditions:
            left = _column(frame, c.field)
            if c.compare_to == "shop_average":
                right = np.nanmean(left) if len(left) else np.nan
            elif c.compare_to == "field":
                right = _column(frame, c.other_field)
            else:
                right = c.value
            mask &= OPERATORS[c.op](left, right) & ~np.isnan(left) & ~np.isnan(right)
    return mask
