"""Closed loop on a synthetic shop: does the measured uplift find the true effect?

Generates a shop of CUSTOMERS customers (database ``bench_loop``), trains at ``as_of``
(60 days before the shop's last day, so the future exists), runs a campaign on the
high-risk tier with a 50% control arm and automatic approval, sends the offers, lets the
synthetic customers respond per their ground truth, evaluates the campaign, and prints the
measured uplift in 30-day retention with its 95% interval next to the generator's true
average effect on the treated. Acceptance: the interval covers the truth.

    .venv/bin/python bench/closed_loop.py [--customers 50000] [--seed 2026]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import bootstrap

bootstrap.configure("bench_loop")

END = dt.date(2026, 6, 30)
AS_OF = END - dt.timedelta(days=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--algorithms", default="logistic_regression,lightgbm")
    args = parser.parse_args()

    from django.core.management import call_command

    bootstrap.ready()

    from customers.synthetic.services import generate_shop
    from ml.services import train_models
    from retention.models import Campaign, CampaignOutcome, Intervention, Offer
    from retention.selectors import true_average_effect

    started = time.perf_counter()
    generate_shop(customers=args.customers, days=730, seed=args.seed, end=END, replace=True)
    Campaign.objects.all().delete()
    print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    result = train_models(as_of=AS_OF, algorithms=args.algorithms.split(","))
    print(f"trained in {time.perf_counter() - started:.0f} s; champion {result.best.algorithm}")

    campaign = Campaign.objects.create(
        name="Closed-loop benchmark",
        target_tier="high",
        approval_mode=Campaign.Approval.AUTOMATIC,
        channels=["email", "sms"],
        control_share=0.5,
        starts_on=AS_OF,
        ends_on=AS_OF,
        window_days=30,
        status=Campaign.Status.ACTIVE,
    )
    campaign.offers.set(Offer.objects.all())
    call_command("run_pipeline", "--as-of", AS_OF.isoformat())
    call_command("send_outbox", "--as-of", (AS_OF + dt.timedelta(days=1)).isoformat())
    call_command("simulate_responses", "--as-of", END.isoformat())
    call_command("evaluate_campaigns", "--as-of", END.isoformat())

    outcome = CampaignOutcome.objects.get(campaign=campaign, as_of=END)
    truth = true_average_effect(campaign, as_of=AS_OF)
    t, c = outcome.arms["treatment"], outcome.arms["control"]
    sent = Intervention.objects.filter(campaign=campaign, sent_at__isnull=False).count()
    covered = outcome.ci_low <= truth <= outcome.ci_high
    print(
        f"arms: treatment {t['retained']:,}/{t['customers']:,} retained ({sent:,} offers sent), "
        f"control {c['retained']:,}/{c['customers']:,}\n"
        f"measured uplift {outcome.uplift:+.4f}, 95% CI [{outcome.ci_low:+.4f}, "
        f"{outcome.ci_high:+.4f}]; true average effect on the treated {truth:+.4f}; "
        f"{'covered' if covered else 'NOT covered'}"
    )


if __name__ == "__main__":
    main()
