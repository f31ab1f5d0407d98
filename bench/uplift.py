"""Learned uplift on a synthetic shop: does targeting by it beat targeting by churn risk?

Generates a shop of CUSTOMERS customers (database ``bench_uplift``), trains a churn model,
then runs four simulated weeks of campaigns with learning: each week the shop is scored,
one automatic campaign per risk tier proposes offers chosen by what has been learned so far
(with an exploration share and a control arm), the offers are sent, the synthetic
customers respond as their ground truth says, and ``uplift_learn`` learns from every
intervention whose window has closed. Once the last week's window has closed, a week
follows in which the same coupon budget goes either to the top churn risks or to the top
learned uplift (each customer with the offer of highest learned uplift for them). Both are
measured against the simulator's truth: each customer's true effect of that offer given
what the shop has observed (:func:`customers.synthetic.responses.expected_effect`: the
customer's own boost and shock, weighed by the true probabilities that they already left,
and then how long ago, or are around and would order anyway).

Prints, for the acceptance of issue 17:

* incremental customers per coupon of both targetings, their ratio (target >= 1.3) and the
  bootstrap 95% interval of the difference (target above 0);
* each offer's learned effect with its 95% interval next to the true average effect on the
  customers treated with it (target: covered);
* how many sleeping dogs (customers the offer drives away) each targeting sends an offer;
  ``--sleeping-dogs`` makes complainers negative responders to every offer while their
  support ticket is under 90 days old (in every learning week and the test week), a shop
  where that count matters;
* the A/A false "keep" rate of the sequential answer, looked at daily for 8 weeks.

    .venv/bin/python bench/uplift.py [--customers 50000] [--seed 2026] [--sleeping-dogs]
        [--reach-half-life DAYS]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import time
from collections.abc import Callable

import bootstrap
import numpy as np
import pandas as pd

bootstrap.configure("bench_uplift")

END = dt.date(2026, 6, 30)
QUIET = open(os.devnull, "w")  # noqa: SIM115 (the commands' own reports, for the whole run)
WEEKS = 4
TIERS = ("high", "medium", "low")
PUT_OFF_DAYS = 90  # how long a support ticket puts a sleeping dog off offers


def _say(started: float, text: str) -> None:
    print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)


def _complainers(since: dt.date, until: dt.date) -> np.ndarray:
    """Customers with a support ticket in ``(since, until]``."""
    from core.time import cutoff_of
    from customers.models import Event

    tickets = Event.objects.filter(
        kind="support_ticket", occurred_at__gt=cutoff_of(since), occurred_at__lte=cutoff_of(until)
    )
    return np.unique(np.fromiter(tickets.values_list("customer_id", flat=True), dtype=np.int64))


def make_sleeping_dogs(
    *, first: dt.date, last: dt.date, seed: int
) -> Callable[[dt.date], np.ndarray]:
    """``put_off(day)`` makes the customers whose support ticket is at most PUT_OFF_DAYS old
    on ``day`` negative responders to every offer (no extra order, a chance of leaving
    because of it), gives everyone else back their generated reaction, and returns the
    complainers' ids. Called before each week's offers and before the test week: the
    put-off lasts while the complaint is recent, as a shop can see it, not for good."""
    from customers.models import SyntheticResponse

    ever = _complainers(first - dt.timedelta(days=PUT_OFF_DAYS), last)
    rows = list(
        SyntheticResponse.objects.filter(customer_id__in=ever.tolist()).order_by(
            "customer_id", "offer_type"
        )
    )
    generated = [(row.purchase_boost, row.dropout_shock) for row in rows]
    shocks = np.random.default_rng(seed).uniform(0.15, 0.45, len(rows)).round(4)

    def put_off(day: dt.date) -> np.ndarray:
        now = _complainers(day - dt.timedelta(days=PUT_OFF_DAYS), day)
        dog = np.isin([row.customer_id for row in rows], now)
        for row, own, shock, is_dog in zip(rows, generated, shocks, dog, strict=True):
            row.purchase_boost, row.dropout_shock = (0.0, shock) if is_dog else own
        SyntheticResponse.objects.bulk_update(rows, ["purchase_boost", "dropout_shock"], 5000)
        return now

    return put_off


def reuse(customers: int) -> None:
    """Start again on the stored shop: its workflow rows go, its history and champion stay.
    Refused once responses were simulated, since those changed the shop's orders."""
    from django.db import connection

    from customers.models import SyntheticShop
    from ml.models import ScoringRun
    from ml.selectors import champion
    from retention.models import (
        Alert,
        AuditEntry,
        Campaign,
        Coupon,
        Intervention,
        OutboxMessage,
        UpliftModel,
    )
    from retention.services.simulation import SIMULATED

    shop = SyntheticShop.objects.order_by("-id").first()
    if shop is None or shop.customers != customers or champion() is None:
        sys.exit(f"--reuse: no trained shop of {customers:,} customers to reuse")
    if AuditEntry.objects.filter(action=SIMULATED).exists():
        sys.exit("--reuse: responses were simulated on this shop; generate it again")
    tables = (AuditEntry, OutboxMessage, Coupon, Intervention, Alert, Campaign, UpliftModel)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(m._meta.db_table for m in tables)} CASCADE")
    # Scoring runs are redone: a regenerated shop has new customer ids.
    ScoringRun.objects.all().delete()


def learning_weeks(
    start: dt.date,
    *,
    window: int,
    exploration: float,
    t0: float,
    put_off: Callable[[dt.date], np.ndarray] | None,
) -> list:
    from django.core.management import call_command

    from core.time import moment
    from retention.models import Campaign, Offer
    from retention.services.learning import uplift_learn

    campaigns = []
    for week in range(WEEKS):
        day = start + dt.timedelta(days=7 * week)
        dogs = put_off(day) if put_off is not None else None
        learned = uplift_learn(as_of=day, now=moment(day))
        for tier in TIERS:
            campaign = Campaign.objects.create(
                name=f"Week {week + 1} {tier} risk",
                target_tier=tier,
                approval_mode=Campaign.Approval.AUTOMATIC,
                channels=["email", "sms"],
                control_share=0.5,
                exploration_share=exploration,
                starts_on=day,
                ends_on=day,
                window_days=window,
                status=Campaign.Status.ACTIVE,
            )
            campaign.offers.set(Offer.objects.filter(is_active=True))
            campaigns.append(campaign)
        call_command("run_pipeline", "--as-of", day.isoformat(), stdout=QUIET)
        sent = (day + dt.timedelta(days=1)).isoformat()
        call_command("send_outbox", "--as-of", sent, stdout=QUIET)
        # Offers sent on day + 1 (at its end, when replayed) respond from the day after.
        reacted = (day + dt.timedelta(days=2)).isoformat()
        call_command("simulate_responses", "--as-of", reacted, stdout=QUIET)
        _say(
            t0,
            f"week {week + 1} ({day}): learned from {learned.treated:,} treated and "
            f"{learned.control:,} control; per-customer model for offers "
            f"{learned.offers_modelled or 'none yet'}"
            + (f"; {dogs.size:,} complainers put off" if dogs is not None else ""),
        )
    return campaigns


def coverage(campaigns, model, *, window: int) -> list[tuple]:
    """Per offer: learned effect and interval against the true average effect on the
    customers treated with it (intention to treat: those never sent count as 0)."""
    from customers.synthetic.selectors import true_offer_effects
    from retention.models import Intervention, Offer

    parts = []
    for campaign in campaigns:
        rows = pd.DataFrame.from_records(
            list(
                Intervention.objects.filter(
                    campaign=campaign, arm=Intervention.Arm.TREATMENT
                ).values("customer_id", "offer_id", "offer_type", "sent_at")
            ),
            columns=["customer_id", "offer_id", "offer_type", "sent_at"],
        )
        if rows.empty:
            continue
        effects = true_offer_effects(rows, as_of=campaign.starts_on, window_days=window)
        effects.loc[effects["sent_at"].isna(), "effect"] = 0.0
        parts.append(effects)
    truth = pd.concat(parts).groupby("offer_id")["effect"].mean()
    result = []
    for offer in Offer.objects.order_by("pk"):
        e = model.effects.get(str(offer.pk))
        if not e or not e["treated"] or offer.pk not in truth.index:
            continue
        true = float(truth[offer.pk])
        covered = e["effect_low"] <= true <= e["effect_high"]
        result.append((offer.name, e, true, covered))
    return result


def test_week(day: dt.date, *, window: int, budget_share: float, seed: int) -> dict:
    from customers.synthetic.selectors import true_offer_effects
    from ml.selectors import latest_run, run_frame
    from retention.models import Offer
    from retention.offers import OfferOption
    from retention.selectors import offer_responses

    frame = run_frame(latest_run())
    offers = list(Offer.objects.filter(is_active=True).order_by("pk"))
    options = [OfferOption.of(o) for o in offers]
    learned = offer_responses(options, frame, as_of=day)
    best = np.nan_to_num(learned.uplift, nan=-np.inf).argmax(axis=1)
    score = learned.uplift[np.arange(len(best)), best]
    budget = int(budget_share * len(frame))
    ids = frame.index.to_numpy(np.int64)
    by_risk = np.argsort(-frame["probability"].to_numpy(float), kind="stable")[:budget]
    by_uplift = np.argsort(-score, kind="stable")[:budget]
    types = np.array([o.offer_type for o in options])
    # Every customer with every offer, read once: row i * len(types) + j is customer i
    # with offer j, so each targeting's coupons are rows of it.
    every = pd.DataFrame(
        {"customer_id": np.repeat(ids, len(types)), "offer_type": np.tile(types, len(ids))}
    )
    truth = true_offer_effects(every, as_of=day, window_days=window)
    effects = truth["effect"].to_numpy().reshape(len(ids), len(types))
    best_true = effects.max(axis=1)
    groups = {
        name: truth.iloc[rows * len(types) + best[rows]].reset_index(drop=True)
        for name, rows in (("risk", by_risk), ("uplift", by_uplift))
    }
    rng = np.random.default_rng(seed)
    a, b = groups["uplift"]["effect"].to_numpy(), groups["risk"]["effect"].to_numpy()
    draws = np.array(
        [rng.choice(a, a.size).mean() - rng.choice(b, b.size).mean() for _ in range(2000)]
    )
    return {
        "budget": budget,
        "customers": len(frame),
        "groups": groups,
        "difference": (a.mean() - b.mean(), *np.quantile(draws, [0.025, 0.975])),
        "sources": learned.source,
        "oracle": float(np.sort(best_true)[::-1][:budget].mean()),
        "learned": pd.Series(score, index=ids),
        # the share of all scored customers whom the offer uplift targeting picks would hurt
        "hurt": float((effects[np.arange(len(ids)), best] < 0).mean()),
    }


def sleeping_dogs_report(week: dict, dogs: np.ndarray) -> None:
    """How many of the complainers put off on the test day each targeting sent an offer,
    and what the learner made of them."""
    risk, uplift = week["groups"]["risk"], week["groups"]["uplift"]
    print(
        f"  complainers put off on the test day ({dogs.size:,}), sent an offer: risk targeting "
        f"{int(risk['customer_id'].isin(dogs).sum()):,}, uplift targeting "
        f"{int(uplift['customer_id'].isin(dogs).sum()):,}"
    )
    learned = week["learned"]
    dog = learned.index.isin(dogs)
    print(
        f"  learned uplift of their best offer: complainers mean {learned[dog].mean():+.4f} "
        f"({(learned[dog] > 0).mean():.0%} above zero), everyone else "
        f"{learned[~dog].mean():+.4f} ({(learned[~dog] > 0).mean():.0%} above zero); "
        f"the budget's lowest learned uplift {learned.nlargest(week['budget']).min():+.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--window", type=int, default=14, help="days a response counts")
    parser.add_argument("--exploration", type=float, default=0.2)
    parser.add_argument("--budget-share", type=float, default=0.1, help="coupons / customers")
    parser.add_argument("--sleeping-dogs", action="store_true")
    parser.add_argument(
        "--reach-half-life",
        type=float,
        help="days after which an offer reaches a customer who left with half its strength "
        "(the generator's default unless given; 0: no fading)",
    )
    parser.add_argument("--algorithms", default="logistic_regression,lightgbm")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the shop and champion of an earlier run that simulated no responses",
    )
    args = parser.parse_args()

    bootstrap.ready()
    from django.core.management import call_command

    from core.time import moment
    from customers.synthetic.process import Params
    from customers.synthetic.services import generate_shop
    from ml.services import train_models
    from retention.models import Campaign
    from retention.sequential import aa_false_helps
    from retention.services.learning import uplift_learn

    t0 = time.perf_counter()
    # Four weekly campaigns, then their windows close, then the test week.
    start = END - dt.timedelta(days=7 * WEEKS + args.window + 14)
    test_day = start + dt.timedelta(days=7 * (WEEKS - 1) + args.window)
    if args.reuse:
        reuse(args.customers)
        _say(t0, "reusing the shop and champion of an earlier run")
    else:
        process = Params()
        if args.reach_half_life is not None:
            process = dataclasses.replace(process, reach_half_life=args.reach_half_life)
        generate_shop(
            customers=args.customers,
            days=730,
            seed=args.seed,
            end=END,
            replace=True,
            process=process,
        )
        Campaign.objects.all().delete()
        _say(
            t0,
            f"generated {args.customers:,} customers; offers reach those gone "
            f"{process.reach_half_life:g} days with half their strength",
        )
    put_off = None
    if args.sleeping_dogs:
        put_off = make_sleeping_dogs(first=start, last=test_day, seed=args.seed)
        _say(
            t0,
            f"sleeping-dogs shop: customers put off by any offer while their support ticket is "
            f"under {PUT_OFF_DAYS} days old (applied each week)",
        )
    if not args.reuse:
        result = train_models(as_of=start, algorithms=args.algorithms.split(","))
        _say(t0, f"trained at {start}; champion {result.best.algorithm}")

    campaigns = learning_weeks(
        start, window=args.window, exploration=args.exploration, t0=t0, put_off=put_off
    )
    call_command("evaluate_campaigns", "--as-of", test_day.isoformat(), stdout=QUIET)
    model = uplift_learn(as_of=test_day, now=moment(test_day))
    Campaign.objects.update(status=Campaign.Status.FINISHED)  # the test week proposes nothing
    dogs = put_off(test_day) if put_off is not None else np.array([], dtype=np.int64)
    call_command("run_pipeline", "--as-of", test_day.isoformat(), stdout=QUIET)
    _say(
        t0,
        f"test week {test_day}: learned from {model.treated:,} treated, {model.control:,} "
        f"control; per-customer model for offers {model.offers_modelled}",
    )

    week = test_week(test_day, window=args.window, budget_share=args.budget_share, seed=args.seed)
    risk, uplift = week["groups"]["risk"], week["groups"]["uplift"]
    per_risk, per_uplift = risk["effect"].mean(), uplift["effect"].mean()
    d, lo, hi = week["difference"]
    print(
        f"\nTest week: {week['budget']:,} coupons for {week['customers']:,} scored customers "
        f"(response matrix from: {', '.join(week['sources'])})\n"
        f"  incremental customers per coupon: top churn risk {per_risk:.4f} "
        f"({risk['effect'].sum():.0f} in all), top learned uplift {per_uplift:.4f} "
        f"({uplift['effect'].sum():.0f} in all)\n"
        f"  uplift / risk = {per_uplift / per_risk:.2f} (target >= 1.30); difference "
        f"{d:+.4f} per coupon, 95% CI [{lo:+.4f}, {hi:+.4f}] "
        f"({'above zero' if lo > 0 else 'NOT above zero'})\n"
        f"  ceiling (knowing each customer's own reaction): "
        f"{week['oracle']:.4f} per coupon ({week['oracle'] / per_risk:.2f} x risk targeting)"
    )
    print(
        f"  sleeping dogs sent an offer (dropout shock > 0): risk targeting "
        f"{int((risk['dropout_shock'] > 0).sum()):,}, uplift targeting "
        f"{int((uplift['dropout_shock'] > 0).sum()):,}; with a negative true effect: "
        f"{int((risk['effect'] < 0).sum()):,} and {int((uplift['effect'] < 0).sum()):,} "
        f"(retention lost: {-risk['effect'].clip(upper=0).sum():.1f} and "
        f"{-uplift['effect'].clip(upper=0).sum():.1f} customers); of all scored customers "
        f"{week['hurt']:.2%} would be hurt by the offer uplift targeting picks for them, of "
        f"its coupons {(uplift['effect'] < 0).mean():.2%}"
    )
    if dogs.size:
        sleeping_dogs_report(week, dogs)
    print("\nLearned per-offer effects on retention in the window (95% interval) vs truth:")
    rows = coverage(campaigns, model, window=args.window)
    for name, e, true, covered in rows:
        print(
            f"  {name:32s} {e['effect']:+.4f} [{e['effect_low']:+.4f}, {e['effect_high']:+.4f}]"
            f"  true {true:+.4f}  {'covered' if covered else 'NOT covered'}"
            f"  ({e['treated']:,} treated / {e['control']:,} control)"
        )
    print(f"  covered: {sum(r[3] for r in rows)} of {len(rows)}")
    rate = max(
        aa_false_helps(trials=20_000, days=56, per_day=per_day, retention=p, seed=args.seed)
        for per_day in (10, 40, 200)
        for p in (0.1, 0.3, 0.6)
    )
    print(
        f"\nA/A, looked at daily for 8 weeks (20,000 trials per setting, 10-200 customers a "
        f"day, retention 10-60%): worst false 'keep' rate {rate:.2%} (target <= 5%)"
    )


if __name__ == "__main__":
    main()
