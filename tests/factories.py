"""Scoring runs, campaigns and customers made to order for workflow tests, so each test
states exactly which customers a rule should match (scoring itself is tested in tests/ml)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from customers.models import Customer, SyntheticShop, SyntheticTruth
from ml.features import FEATURE_NAMES
from ml.models import ModelVersion, ScoringRun
from ml.partitions import scores_write
from ml.recommendations import NO_PICK
from ml.selectors import active_definition
from ml.services import attach_frame
from ml.stages import stages
from retention.models import Campaign, Intervention, Offer, OutboxMessage, RiskRule

AS_OF = dt.date(2026, 6, 30)
NOW = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)  # 12:00 in Berlin: not quiet hours


def customer(external_id: str, **fields) -> Customer:
    defaults = {
        "name": f"Test {external_id}",
        "email": f"{external_id}@example.com",
        "phone": "+4915100000000",
        "email_consent": True,
        "sms_consent": True,
        "time_zone": "Europe/Berlin",
    }
    return Customer.objects.create(external_id=external_id, **{**defaults, **fields})


def synthetic_truth(person: Customer, shop: SyntheticShop, **fields) -> SyntheticTruth:
    """The generator's hidden truth for one customer: a slow buyer, likely to churn."""
    defaults = {
        "purchase_rate": 0.01,
        "dropout_prob": 0.5,
        "session_rate": 0.01,
        "spend_level": 1,
        "true_churn_prob": 0.9,
    }
    return SyntheticTruth.objects.create(customer=person, shop=shop, **{**defaults, **fields})


def scored_run(rows: list[dict], *, as_of: dt.date = AS_OF) -> ScoringRun:
    """A finished scoring run over ``rows`` (each: ``customer`` plus any features,
    ``probability``, ``tier``, ``stage`` and product ids in ``picks``; unspecified features
    are 0, except P(alive), 1: the customer is active, staged by probability alone)."""
    definition = active_definition()
    version = ModelVersion.objects.filter(algorithm="test").first() or ModelVersion.objects.create(
        algorithm="test",
        features=FEATURE_NAMES,
        definition=definition,
        definition_fingerprint=definition.fingerprint(),
        trained_as_of=as_of,
        training_cutoffs=[],
        holdout_cutoff=as_of,
        training_rows=0,
        holdout_rows=0,
        metrics={},
        artifact=b"",
        checksum="",
    )
    run = ScoringRun.objects.create(as_of=as_of, model_version=version)
    ids = [r["customer"].pk for r in rows]
    unset = {**dict.fromkeys(FEATURE_NAMES, 0.0), "bgnbd_p_alive": 1.0}
    features = pd.DataFrame(
        [{f: r.get(f, unset[f]) for f in FEATURE_NAMES} for r in rows], index=ids, dtype=float
    )
    probability = np.array([r.get("probability", 0.8) for r in rows])
    staged = stages(
        definition.stage_thresholds(),
        probability=probability,
        p_alive=features["bgnbd_p_alive"].to_numpy(),
        recency_days=features["recency_days"].to_numpy(),
    )
    scores = pd.DataFrame(
        {
            "run_id": run.pk,
            "customer_id": ids,
            "probability": probability,
            "tier": [
                r.get("tier", definition.tier(p)) for r, p in zip(rows, probability, strict=True)
            ],
            "expected_spend": [r.get("expected_spend", 200.0) for r in rows],
            "value_at_risk": probability * [r.get("expected_spend", 200.0) for r in rows],
            "source": "model",
            "stage": [r.get("stage", s) for r, s in zip(rows, staged, strict=True)],
            "reasons": [json.dumps(r.get("reasons", ["no order for 74 days"])) for r in rows],
        }
    )
    picks = pd.DataFrame(
        [(r.get("picks", []) + [NO_PICK] * 3)[:3] for r in rows],
        index=ids,
        columns=["pick_1", "pick_2", "pick_3"],
    )
    attach_frame(run, features=features, picks=picks)
    scores_write(run_id=run.pk, frame=scores)
    run.status, run.customers_scored = ScoringRun.Status.DONE, len(rows)
    run.save()
    return run


def campaign(**fields) -> Campaign:
    defaults = {
        "name": "Win back",
        "target_rule": RiskRule.objects.get(name="High churn risk"),
        "channels": ["sms", "email"],
        "control_share": 0.5,
        "starts_on": dt.date(2026, 1, 1),
        "status": Campaign.Status.ACTIVE,
    }
    created = Campaign.objects.create(**{**defaults, **fields})
    created.offers.set(Offer.objects.filter(offer_type__in=["percent_off", "free_shipping"]))
    return created


def intervention(
    campaign: Campaign, person: Customer, *, at: dt.datetime, offer: Offer | None = None, **fields
) -> Intervention:
    """An unsaved treatment offer of ``campaign`` (its first offer unless given) to
    ``person``, proposed at ``at``; ``fields`` set anything else (arm, state, sent_at)."""
    offer = offer or campaign.offers.first()
    defaults = {
        "offer_type": offer.offer_type,
        "offer_value": offer.value,
        "arm": "treatment",
        "state": "sent",
        "probability": 0.9,
        "value_at_risk": 90,
        "expected_net_value": 5,
        "expected_cost": 1,
    }
    return Intervention(
        campaign=campaign,
        customer=person,
        offer=offer,
        as_of=at.date(),
        proposed_at=at,
        **{**defaults, **fields},
    )


def outbox_sms(
    campaign: Campaign, person: Customer, *, intervention_state: str, at: dt.datetime, **fields
) -> OutboxMessage:
    """A treatment offer of ``campaign`` to ``person`` with its SMS in the outbox, for tests
    of sending and receipts that need no proposal run before them."""
    offered = intervention(
        campaign,
        person,
        at=at,
        state=intervention_state,
        offer_type="percent_off",
        offer_value=10,
        expected_cost=5,
    )
    offered.save()
    message = {"channel": "sms", "recipient": "+49", "body": "10% off", **fields}
    return OutboxMessage.objects.create(
        intervention=offered, next_attempt_at=at, created_at=at, **message
    )
