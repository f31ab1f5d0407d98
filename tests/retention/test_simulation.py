"""Synthetic customers reacting to offers: the simulation follows their ground truth, and an
offer reaches a customer who already left the less the longer they are gone."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from customers.models import Order, SyntheticResponse, SyntheticShop
from customers.synthetic.process import Params
from customers.synthetic.responses import expected_effect, reach
from retention.models import Offer
from retention.services.simulation import responses_simulate
from tests.factories import NOW, campaign, customer, intervention, synthetic_truth

PEOPLE = 200  # per group: the share brought back is judged within a few standard errors
HALF_LIFE = Params().reach_half_life


def test_reach_fades_with_the_time_gone_and_spares_those_still_around():
    days = np.array([np.nan, -3.0, 0.0, HALF_LIFE, 4 * HALF_LIFE])
    assert reach(days, half_life=HALF_LIFE) == pytest.approx([1, 1, 1, 1 / 2, 1 / 16])
    assert reach(days, half_life=0) == pytest.approx(np.ones(5))  # a shop without fading


def test_expected_effect_without_fading_is_the_plain_effect_on_the_churn_probability():
    left, none_if_around = np.array([0.2, 0.9]), np.array([0.7, 0.95])
    boost, shock = np.array([0.3, 0.1]), np.array([0.0, 0.2])
    q = (1 - left) * (1 - none_if_around)  # P(order in the window without the offer)
    just_gone = expected_effect(
        left=left,
        none_if_around=none_if_around,
        days_since_last=np.zeros(2),
        boost=boost,
        shock=shock,
        half_life=HALF_LIFE,
    )
    assert just_gone == pytest.approx((1 - shock) * (q + (1 - q) * boost) - q)
    long_gone = expected_effect(
        left=left,
        none_if_around=none_if_around,
        days_since_last=np.full(2, 720.0),
        boost=boost,
        shock=shock,
        half_life=HALF_LIFE,
    )
    assert (long_gone < just_gone).all()


def _treated(group: str, *, dropped_out_at: dt.datetime | None, shop, offer, where) -> None:
    for i in range(PEOPLE):
        person = customer(f"{group}{i}")
        synthetic_truth(person, shop, dropped_out_at=dropped_out_at)
        SyntheticResponse.objects.create(
            customer=person, offer_type=offer.offer_type, purchase_boost=1.0, dropout_shock=0
        )
        intervention(where, person, at=NOW, offer=offer, sent_at=NOW).save()


def test_customers_long_gone_are_rarely_brought_back(db):
    shop = SyntheticShop.objects.create(
        seed=1, start=dt.date(2024, 7, 1), end=dt.date(2026, 6, 30), customers=3 * PEOPLE, params={}
    )
    offer = Offer.objects.get(offer_type="percent_off")
    where = campaign(window_days=14)
    _treated("around", dropped_out_at=None, shop=shop, offer=offer, where=where)
    half = NOW - dt.timedelta(days=HALF_LIFE)
    _treated("half", dropped_out_at=half, shop=shop, offer=offer, where=where)
    _treated(
        "years",
        dropped_out_at=NOW - dt.timedelta(days=12 * HALF_LIFE),
        shop=shop,
        offer=offer,
        where=where,
    )

    responses_simulate(as_of=NOW.date() + dt.timedelta(days=1))

    def brought_back(group: str) -> float:
        orders = Order.objects.filter(
            external_id__startswith="sim-", customer__external_id__startswith=group
        )
        return orders.count() / PEOPLE

    assert brought_back("around") == 1.0  # a boost of 1 always lands on a customer still here
    assert 0.36 < brought_back("half") < 0.64  # four standard errors around 1/2
    assert brought_back("years") <= 0.01
