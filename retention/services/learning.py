"""Learning each offer's effect from finished interventions, daily.

An intervention teaches something once its response window has closed: whether the
customer ordered in it (retained), in the treatment arm with the offer they got, or in the
control arm with the offer they would have got. Treated and control customers recorded with
the same offer were split by a random hash, so comparing them is fair for that offer;
exploration makes sure every offer is recorded for every kind of customer.

What is learned is stored as an :class:`UpliftModel` row that proposals read; learning again
on the same day adds a newer row, and nothing else changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle

import numpy as np
import pandas as pd

from ml.models import ScoringRun
from ml.selectors import NotReady, run_frame
from retention.learning import MIN_ARM, MIN_MODEL_ARM, UpliftLearner, effect_posterior
from retention.models import Campaign, Offer, UpliftModel
from retention.selectors import finished_interventions

TIERS = ("high", "medium", "low")


def _counts(rows: pd.DataFrame) -> dict[str, int]:
    t, c = rows[rows["treated"]], rows[~rows["treated"]]
    return {
        "treated": len(t),
        "treated_retained": int(t["retained"].sum()),
        "control": len(c),
        "control_retained": int(c["retained"].sum()),
    }


def offer_effects(finished: pd.DataFrame, offers: list[Offer]) -> dict[str, dict]:
    """Per offer: its posterior effect shrunk toward the admin's prior, and per risk tier
    where both arms have ``MIN_ARM`` customers, shrunk toward the offer's own estimate."""
    effects = {}
    for offer in offers:
        mine = finished[finished["offer_id"] == offer.pk] if len(finished) else finished
        counts = (
            _counts(mine)
            if len(mine)
            else dict.fromkeys(["treated", "treated_retained", "control", "control_retained"], 0)
        )
        overall = effect_posterior(
            **counts,
            prior=offer.expected_response,
            prior_strength=offer.prior_strength,
            seed=offer.pk,
        )
        tiers = {}
        for tier in TIERS:
            part = mine[mine["tier"] == tier] if len(mine) else mine
            if not len(part):
                continue
            counts = _counts(part)
            if min(counts["treated"], counts["control"]) < MIN_ARM:
                continue
            tiers[tier] = effect_posterior(
                **counts,
                prior=float(np.clip(overall.response, -0.95, 0.95)),
                prior_strength=offer.prior_strength,
                seed=offer.pk,
            ).as_dict()
        effects[str(offer.pk)] = overall.as_dict() | {"tiers": tiers}
    return effects


def _features(finished: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Each finished intervention's scoring features on the day it was proposed, from that
    day's run frame; interventions whose frame is gone are left out."""
    parts, columns = [], None
    for day, group in finished.groupby("as_of"):
        run = (
            ScoringRun.objects.filter(status=ScoringRun.Status.DONE, as_of=day)
            .order_by("-id")
            .first()
        )
        if run is None:
            continue
        try:
            frame = run_frame(run)
        except NotReady:
            continue
        # Tier and stage are labels cut from the probability, which the model sees whole.
        frame = frame.select_dtypes("number")
        columns = columns or list(frame.columns)
        found = group[group["customer_id"].isin(frame.index)]
        x = frame.reindex(columns=columns).loc[found["customer_id"].to_numpy()]
        parts.append(pd.DataFrame(x.to_numpy(float), index=found.index, columns=columns))
    if not parts:
        return pd.DataFrame(), []
    return pd.concat(parts), columns


def uplift_learn(*, as_of: dt.date, now: dt.datetime, seed: int = 0) -> UpliftModel:
    """Learn from every intervention finished by ``as_of``: per-offer effects always, and
    a per-customer X-learner once both arms of some offer reach ``MIN_MODEL_ARM``."""
    finished = finished_interventions(as_of=as_of)
    offers = list(Offer.objects.order_by("pk"))
    effects = offer_effects(finished, offers)
    learned = UpliftModel(
        as_of=as_of,
        fitted_at=now,
        effects=effects,
        treated=int(finished["treated"].sum()) if len(finished) else 0,
        control=int((~finished["treated"]).sum()) if len(finished) else 0,
    )
    enough = len(finished) and (~finished["treated"]).sum() >= MIN_MODEL_ARM
    if enough:
        X, columns = _features(finished)
        rows = finished.loc[X.index] if len(X) else finished.iloc[:0]
        treated = rows["treated"].to_numpy()
        arms = pd.crosstab(rows["offer_id"], rows["treated"]).reindex(columns=[False, True])
        if (~treated).sum() >= MIN_MODEL_ARM and (
            arms.fillna(0).min(axis=1) >= MIN_MODEL_ARM
        ).any():
            learner = UpliftLearner(features=columns, seed=seed).fit(
                X.to_numpy(float),
                rows["retained"].to_numpy(),
                treated,
                rows["offer_id"].to_numpy(np.int64),
            )
            blob = pickle.dumps(learner, protocol=pickle.HIGHEST_PROTOCOL)
            learned.artifact = blob
            learned.checksum = hashlib.sha256(blob).hexdigest()
            learned.features = columns
            learned.offers_modelled = learner.offers
    learned.save()
    return learned


def offer_prior_set(
    *, offer: Offer, expected_response: float | None = None, prior_strength: int | None = None
) -> Offer:
    """Change an offer's prior; refused (ValidationError on the field) outside (0, 1), or
    for a strength below one customer. Learning uses it from its next run."""
    if expected_response is not None:
        offer.expected_response = expected_response
    if prior_strength is not None:
        offer.prior_strength = prior_strength
    offer.full_clean()
    offer.save(update_fields=["expected_response", "prior_strength"])
    return offer


def campaign_exploration_set(
    *, campaign: Campaign, exploration_share: float | None = None
) -> Campaign:
    """Change the share of targeted customers who get a random eligible offer; refused
    (ValidationError on the field) outside [0, 0.5]. Customers already proposed keep
    theirs: the share applies from the next proposals."""
    if exploration_share is not None:
        campaign.exploration_share = exploration_share
    campaign.full_clean()
    campaign.save(update_fields=["exploration_share"])
    return campaign
