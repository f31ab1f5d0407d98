"""Retention uplift of a treatment arm over its control arm, with a 95% interval.

The difference of two proportions with the unpooled (Wald) standard error,
``sqrt(pt (1 - pt) / nt + pc (1 - pc) / nc)``: the textbook interval for an A/B test,
honest when each arm has at least ``MIN_ARM`` customers and at least ``MIN_EVENTS``
retained and not retained. Below that the interval is still shown but the verdict says
the sample is too small to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt

from scipy.stats import norm

MIN_ARM = 30
MIN_EVENTS = 5

TOO_SMALL = "too few customers to tell yet (need {arm}+ per arm and {events}+ of each outcome)"
BETTER = "treatment retains more: +{d:.1%} ({lo:+.1%} to {hi:+.1%})"
WORSE = "treatment retains fewer: {d:.1%} ({lo:+.1%} to {hi:+.1%})"
UNCLEAR = "no clear difference: {d:+.1%} ({lo:+.1%} to {hi:+.1%}) includes zero"


@dataclass(frozen=True)
class Uplift:
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    too_small: bool
    verdict: str


def retention_uplift(
    *,
    treated: int,
    treated_retained: int,
    control: int,
    control_retained: int,
    confidence: float = 0.95,
) -> Uplift:
    if treated == 0 or control == 0:
        return Uplift(None, None, None, True, TOO_SMALL.format(arm=MIN_ARM, events=MIN_EVENTS))
    pt, pc = treated_retained / treated, control_retained / control
    difference = pt - pc
    se = sqrt(pt * (1 - pt) / treated + pc * (1 - pc) / control)
    half = norm.ppf(0.5 + confidence / 2) * se
    lo, hi = difference - half, difference + half
    outcomes = [treated_retained, treated - treated_retained]
    outcomes += [control_retained, control - control_retained]
    too_small = min(treated, control) < MIN_ARM or min(outcomes) < MIN_EVENTS
    if too_small:
        verdict = TOO_SMALL.format(arm=MIN_ARM, events=MIN_EVENTS)
    elif lo > 0:
        verdict = BETTER.format(d=difference, lo=lo, hi=hi)
    elif hi < 0:
        verdict = WORSE.format(d=difference, lo=lo, hi=hi)
    else:
        verdict = UNCLEAR.format(d=difference, lo=lo, hi=hi)
    return Uplift(difference, lo, hi, too_small, verdict)
