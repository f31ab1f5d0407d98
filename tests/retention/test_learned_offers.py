"""Offers chosen by what was learned, exploration, learning from finished interventions,
and the admin and API that show and tune it."""

import datetime as dt
import pickle
from hashlib import sha256

import numpy as np
import pandas as pd
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer, Order
from retention.learning import MIN_MODEL_ARM, UpliftLearner
from retention.models import (
    EXPLORATION_OUTSIDE,
    PRIOR_OUTSIDE,
    Campaign,
    Intervention,
    Offer,
    UpliftModel,
)
from retention.selectors import campaign_uplift, load_learner, offer_responses
from retention.services.learning import uplift_learn
from retention.services.pipeline import after_scoring
from retention.services.tokens import api_token_create
from tests.factories import AS_OF, NOW, campaign, customer, intervention, scored_run

pytestmark = pytest.mark.django_db


def _people(n: int, **features) -> list[dict]:
    return [
        {"customer": customer(f"c{i}"), "probability": 0.9, "monetary_avg": 40.0, **features}
        for i in range(n)
    ]


def _offers() -> tuple[Offer, Offer]:
    return Offer.objects.get(offer_type="percent_off"), Offer.objects.get(
        offer_type="free_shipping"
    )


def _learned(effects: dict[Offer, float], *, as_of=AS_OF) -> UpliftModel:
    """A stored lesson: each offer's learned response and effect, as uplift_learn writes."""
    return UpliftModel.objects.create(
        as_of=as_of,
        fitted_at=NOW,
        effects={
            str(o.pk): {
                "treated": 1000,
                "control": 1000,
                "response": r,
                "effect": r * 0.7,
                "tiers": {},
            }
            for o, r in effects.items()
        },
    )


def test_proposals_follow_the_learned_response_not_the_prior():
    percent, shipping = _offers()
    assert percent.expected_response > shipping.expected_response
    rows = _people(40)
    campaign(target_rule=None, target_tier="high", exploration_share=0)
    after_scoring(run=scored_run(rows), now=NOW)
    assert set(Intervention.objects.values_list("offer_id", flat=True)) == {percent.pk}

    Intervention.objects.all().delete()
    _learned({percent: -0.05, shipping: 0.3})
    after_scoring(run=scored_run(rows), now=NOW)
    chosen = Intervention.objects.all()
    assert set(chosen.values_list("offer_id", flat=True)) == {shipping.pk}
    assert all(i.expected_uplift == pytest.approx(0.21) for i in chosen)


def test_an_offer_learned_to_drive_customers_away_is_not_proposed_at_all():
    percent, shipping = _offers()
    _learned({percent: -0.2, shipping: -0.1})
    campaign(target_rule=None, target_tier="high", exploration_share=0)
    after_scoring(run=scored_run(_people(10)), now=NOW)
    assert not Intervention.objects.exists()


def test_the_exploration_share_records_random_offers_in_both_arms_and_logs_them():
    percent, shipping = _offers()
    campaign(target_rule=None, target_tier="high", exploration_share=0.5)
    after_scoring(run=scored_run(_people(200)), now=NOW)
    rows = Intervention.objects.all()
    explored = rows.filter(exploration=True)
    assert 70 <= explored.count() <= 130
    assert {"treatment", "control"} <= set(explored.values_list("arm", flat=True))
    # Explored customers get either offer at random; the rest get the best one.
    assert set(explored.values_list("offer_id", flat=True)) == {percent.pk, shipping.pk}
    assert set(rows.filter(exploration=False).values_list("offer_id", flat=True)) == {percent.pk}


def test_no_exploration_when_the_share_is_zero():
    campaign(target_rule=None, target_tier="high", exploration_share=0)
    after_scoring(run=scored_run(_people(60)), now=NOW)
    assert not Intervention.objects.filter(exploration=True).exists()


PROPOSED_AT = NOW - dt.timedelta(days=40)  # the offers that have finished: window 30 days


def _decided(camp: Campaign, offer: Offer, person: Customer, arm: str, **fields) -> Intervention:
    """An unsaved ``offer`` to ``person`` in ``arm``, proposed at PROPOSED_AT: sent to the
    treatment arm, held out from the control arm."""
    state = "sent" if arm == "treatment" else "held_out"
    return intervention(camp, person, at=PROPOSED_AT, offer=offer, arm=arm, state=state, **fields)


def _ordered(person: Customer) -> Order:
    """An unsaved order of ``person`` inside the finished offers' window."""
    return Order(
        external_id=f"o-{person.pk}",
        customer=person,
        placed_at=PROPOSED_AT + dt.timedelta(days=3),
        total=30,
    )


def _finished(
    camp: Campaign, offer: Offer, *, n: int, treated_retained: int, control_retained: int
):
    """``n`` treated and ``n`` control customers with ``offer``, proposed 40 days before
    AS_OF; the first ``*_retained`` of each arm ordered inside the window."""
    for arm, retained in (("treatment", treated_retained), ("control", control_retained)):
        for i in range(n):
            person = customer(f"{offer.pk}-{arm}-{i}")
            uplift = 0.2 if i < retained else 0.0
            _decided(camp, offer, person, arm, expected_uplift=uplift).save()
            if i < retained:
                _ordered(person).save()


def test_learning_compares_each_offers_treated_customers_with_its_control_arm():
    percent, shipping = _offers()
    camp = campaign(window_days=30)
    _finished(camp, percent, n=60, treated_retained=30, control_retained=15)
    _finished(camp, shipping, n=60, treated_retained=15, control_retained=15)
    learned = uplift_learn(as_of=AS_OF, now=NOW)
    p, s = learned.effects[str(percent.pk)], learned.effects[str(shipping.pk)]
    assert (p["treated"], p["treated_retained"], p["control"], p["control_retained"]) == (
        60,
        30,
        60,
        15,
    )
    assert p["effect_low"] > 0 and p["response"] > s["response"]
    assert s["effect_low"] < 0 < s["effect_high"]
    assert not learned.artifact  # far too few outcomes for a per-customer model

    # The lesson reaches the next proposals: the offer that worked is chosen.
    percent.expected_response, shipping.expected_response = 0.01, 0.5
    Offer.objects.bulk_update([percent, shipping], ["expected_response"])
    responses = offer_responses(
        [o for o in map(_option, [percent, shipping])],
        _frame(),
        as_of=AS_OF,
    )
    assert responses.source == ["offer", "offer"]
    assert responses.response[0, 0] > responses.response[0, 1]


def _option(offer):
    from retention.offers import OfferOption

    return OfferOption.of(offer)


def _frame():
    import pandas as pd

    return pd.DataFrame({"probability": [0.9], "tier": ["high"]}, index=[1])


def test_with_enough_outcomes_a_per_customer_model_learns_from_the_proposal_days_run():
    """Both arms of an offer past ``MIN_MODEL_ARM``, proposed on a day whose run frame
    holds the scores, tier and stage: the model fits on that day's numbers and ranks the
    customers it helps (recent buyers here) above those it does not."""
    percent, _ = _offers()
    camp = campaign(window_days=30)
    n = 2 * MIN_MODEL_ARM + 200
    people = Customer.objects.bulk_create(
        Customer(external_id=f"m{i}", name=f"M {i}", email=f"m{i}@example.com") for i in range(n)
    )
    rng = np.random.default_rng(5)
    recency = rng.uniform(0, 200, n)
    treated = np.arange(n) % 2 == 0
    retained = rng.random(n) < 0.1 + treated * np.where(recency < 100, 0.4, 0.0)
    rows = [{"customer": c, "recency_days": r} for c, r in zip(people, recency, strict=True)]
    scored_run(rows, as_of=PROPOSED_AT.date())
    arm = np.where(treated, "treatment", "control")
    Intervention.objects.bulk_create(
        _decided(camp, percent, c, a) for c, a in zip(people, arm, strict=True)
    )
    Order.objects.bulk_create(_ordered(c) for c, kept in zip(people, retained, strict=True) if kept)
    learned = uplift_learn(as_of=AS_OF, now=NOW)
    assert learned.offers_modelled == [percent.pk]
    assert "probability" in learned.features and "stage" not in learned.features
    targets = pd.DataFrame(
        {"probability": 0.9, "recency_days": [20.0, 180.0]}, index=[people[0].pk, people[1].pk]
    )
    uplift = offer_responses([_option(percent)], targets, as_of=AS_OF).uplift[:, 0]
    assert uplift[0] > uplift[1] + 0.15


def test_a_learner_pickled_in_another_format_is_not_used():
    old = UpliftLearner(features=["recency_days"])
    old.format = UpliftLearner.FORMAT - 1
    blob = pickle.dumps(old)
    model = UpliftModel.objects.create(
        as_of=AS_OF, fitted_at=NOW, effects={}, artifact=blob, checksum=sha256(blob).hexdigest()
    )
    assert load_learner(model) is None


def test_interventions_whose_window_is_still_open_teach_nothing():
    percent, _ = _offers()
    camp = campaign(window_days=60)
    _finished(camp, percent, n=5, treated_retained=5, control_retained=0)
    learned = uplift_learn(as_of=AS_OF, now=NOW)
    assert learned.effects[str(percent.pk)]["treated"] == 0


def test_a_campaign_report_has_a_qini_curve_and_a_sequential_answer():
    percent, _ = _offers()
    camp = campaign(window_days=30)
    _finished(camp, percent, n=40, treated_retained=30, control_retained=10)
    report = campaign_uplift(camp, as_of=AS_OF)
    assert report.finished == 80
    assert report.qini is not None
    assert report.qini.auuc_low <= report.qini.auuc <= report.qini.auuc_high
    assert isinstance(report.qini.curve, np.ndarray) and set(report.qini.top) == {0.1, 0.2, 0.3}
    assert report.sequential.decision in {"keep", "not yet"}


# --- Admin and API ----------------------------------------------------------------------


def _admin_client(admin_user) -> Client:
    web = Client()
    web.force_login(admin_user)
    return web


def _offer_form(offer: Offer, **changes) -> dict:
    data = {
        "offer_type": offer.offer_type,
        "name": offer.name,
        "value": offer.value,
        "unit_cost": offer.unit_cost,
        "min_order_value": offer.min_order_value,
        "valid_days": offer.valid_days,
        "expected_response": offer.expected_response,
        "prior_strength": offer.prior_strength,
        "is_active": "on",
    }
    return {**data, **changes}


@pytest.mark.parametrize("prior", ["0", "1", "1.5", "-0.1"])
def test_the_admin_refuses_a_prior_outside_0_1_on_its_field(admin_user, prior):
    offer, _ = _offers()
    web = _admin_client(admin_user)
    answer = web.post(
        f"/admin/retention/offer/{offer.pk}/change/", _offer_form(offer, expected_response=prior)
    )
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors == {"expected_response": [PRIOR_OUTSIDE]}
    offer.refresh_from_db()
    assert offer.expected_response == 0.08


def test_the_offer_page_shows_prior_against_learned_with_its_interval(admin_user):
    percent, _ = _offers()
    _learned({percent: 0.123})
    learned = UpliftModel.objects.get()
    learned.effects[str(percent.pk)] |= {
        "prior": 0.08,
        "response_low": 0.1,
        "response_high": 0.15,
        "effect_low": 0.07,
        "effect_high": 0.1,
        "p_helps": 0.99,
    }
    learned.as_of = dt.date.today()
    learned.save()
    page = _admin_client(admin_user).get(f"/admin/retention/offer/{percent.pk}/change/")
    text = page.content.decode()
    assert "Prior response 0.080" in text and "0.123 (0.100 to 0.150)" in text


def _campaign_form(camp: Campaign, **changes) -> dict:
    data = {
        "name": camp.name,
        "status": camp.status,
        "approval_mode": camp.approval_mode,
        "target_rule": camp.target_rule_id or "",
        "target_tier": camp.target_tier,
        "offers": [o.pk for o in camp.offers.all()],
        "channels": ["sms"],
        "control_percent": camp.control_share * 100,
        "exploration_share": camp.exploration_share,
        "max_percent_off": camp.max_percent_off,
        "max_fixed_amount": camp.max_fixed_amount,
        "max_loyalty_points": camp.max_loyalty_points,
        "starts_on": camp.starts_on,
        "window_days": camp.window_days,
        "outcomes-TOTAL_FORMS": 0,
        "outcomes-INITIAL_FORMS": 0,
    }
    return {**data, **changes}


def test_the_admin_refuses_an_exploration_share_above_half_on_its_field(admin_user):
    camp = campaign()
    answer = _admin_client(admin_user).post(
        f"/admin/retention/campaign/{camp.pk}/change/", _campaign_form(camp, exploration_share=0.6)
    )
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors == {"exploration_share": [EXPLORATION_OUTSIDE]}


def test_the_campaign_page_draws_the_qini_chart(admin_user):
    percent, _ = _offers()
    camp = campaign(window_days=30, starts_on=AS_OF - dt.timedelta(days=60))
    _finished(camp, percent, n=40, treated_retained=30, control_retained=10)
    text = _admin_client(admin_user).get(f"/admin/retention/campaign/{camp.pk}/change/")
    text = text.content.decode()
    assert "<svg" in text and "Qini curve" in text and "AUUC" in text and "top 10%" in text


def _api(admin_user) -> APIClient:
    api = APIClient()
    _, token = api_token_create(user=admin_user, now=timezone.now())
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def test_the_api_changes_a_prior_and_refuses_one_outside_0_1_naming_the_field(admin_user):
    offer, _ = _offers()
    api = _api(admin_user)
    ok = api.patch(f"/api/v1/offers/{offer.pk}", {"expected_response": 0.2}, format="json")
    assert ok.status_code == 200 and ok.json()["expected_response"] == 0.2
    for bad in (0, 1, 2.5):
        refused = api.patch(f"/api/v1/offers/{offer.pk}", {"expected_response": bad}, format="json")
        assert refused.status_code == 400
        assert refused.json() == {"expected_response": [PRIOR_OUTSIDE]}
    offer.refresh_from_db()
    assert offer.expected_response == 0.2


def test_the_api_refuses_an_exploration_share_outside_0_half_naming_the_field(admin_user):
    camp = campaign()
    api = _api(admin_user)
    refused = api.patch(f"/api/v1/campaigns/{camp.pk}", {"exploration_share": 0.51}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"exploration_share": [EXPLORATION_OUTSIDE]}
    ok = api.patch(f"/api/v1/campaigns/{camp.pk}", {"exploration_share": 0.5}, format="json")
    assert ok.status_code == 200 and ok.json()["uplift"]["decision"] == "not yet"
    camp.refresh_from_db()
    assert camp.exploration_share == 0.5
