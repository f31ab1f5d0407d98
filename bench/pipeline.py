"""From scores to stored alerts and proposals, and outbox throughput, at a million customers.

Uses the shop of ``bench/score.py`` (database ``bench_score``; run that first) and its
latest scoring run (scoring again if the run kept no feature frame, or its file is not in
this checkout). Prints:

1. the seconds from the end of the scoring run to every case and proposed intervention
   being stored and the day's to-do lists planned, with the default rules and one
   campaign targeting "High churn risk" (target under 30 s for 1,000,000 customers);
2. the outbox throughput against a local fake SMS provider over HTTP, in a process of
   its own (target at least 500 messages/s), optionally answering each request after
   ``--provider-ms`` like a provider across the internet.

Workflow rows from an earlier run of this benchmark are deleted first.

    .venv/bin/python bench/score.py && .venv/bin/python bench/pipeline.py [--messages 5000]
        [--provider-ms 0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time

import bootstrap

ROOT = bootstrap.ROOT
bootstrap.configure("bench_score")


def clean() -> None:
    """TRUNCATE, not DELETE: this cluster runs without autovacuum, and each earlier run's
    dead rows would slow the next run's scans and index builds."""
    from django.db import connection

    from retention.models import Alert, AuditEntry, Campaign, Coupon, Intervention, OutboxMessage

    tables = (AuditEntry, OutboxMessage, Coupon, Intervention, Alert, Campaign)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(m._meta.db_table for m in tables)} CASCADE")


def scored_run():
    from ml.selectors import latest_run

    run = latest_run()
    # The database outlives a checkout: another checkout's run has its frame in that one's var/.
    if run is None or not run.frame or not run.frame.storage.exists(run.frame.name):
        subprocess.run([sys.executable, str(ROOT / "bench/score.py"), "--score-only"], check=True)
        run = latest_run()
    return run


def pipeline(run) -> None:
    from core.time import moment
    from retention.models import Alert, Campaign, Offer, RiskRule
    from retention.services.pipeline import after_scoring

    campaign = Campaign.objects.create(
        name="Bench win-back",
        target_rule=RiskRule.objects.get(name="High churn risk"),
        channels=["sms"],
        starts_on=run.as_of,
        status=Campaign.Status.ACTIVE,
    )
    campaign.offers.set(Offer.objects.all())
    started = time.perf_counter()
    summary = after_scoring(run=run, now=moment(run.as_of))
    seconds = time.perf_counter() - started
    listed = sum(summary["alerts"].values())
    cases = Alert.objects.filter(as_of=run.as_of).count()
    proposed = summary["interventions"][campaign.name]
    plan, took = summary["plan"], summary["seconds"]
    print(
        f"{run.customers_scored:,} customers scored: {cases:,} cases listing {listed:,} rule "
        f"hits ({', '.join(f'{k} {v:,}' for k, v in summary['alerts'].items())}) and "
        f"{proposed['treatment'] + proposed['control']:,} interventions "
        f"({proposed['treatment']:,} treatment, {proposed['control']:,} control); "
        f"{plan['to_do']:,} to do today, {plan['watching']:,} watching; stored in "
        f"{seconds:.1f} s (cases {took['cases']} s, interventions {took['interventions']} s, "
        f"priorities and plan {took['plan']} s; target < 30 s)"
    )


def provide(pipe, provider_ms: float) -> None:
    """The fake SMS provider, in a process of its own like a real one: served from a
    thread of the sending process it took a third of that process's interpreter (the GIL)
    and the benchmark measured the fake as much as the outbox."""
    from tests.fakes.sms_provider import FakeProvider

    with FakeProvider() as provider:
        provider.delay = provider_ms / 1000
        pipe.send(provider.url)
        pipe.recv()  # the sender is done
        pipe.send(len(provider.delivered))


def outbox(messages: int, provider_ms: float) -> None:
    from django.conf import settings
    from django.utils import timezone

    from retention.models import Intervention, OutboxMessage
    from retention.services.outbox import outbox_flush

    now = timezone.now()
    targets = Intervention.objects.filter(arm="treatment").values_list("pk", flat=True)[:messages]
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            intervention_id=pk,
            channel="sms",
            recipient="+4915100000000",
            body="Our shop: 10% off your next order with code ABCDEF0123456789.",
            next_attempt_at=now,
            created_at=now,
        )
        for pk in targets
    )
    context = multiprocessing.get_context("spawn")  # nothing of Django's state inherited
    pipe, theirs = context.Pipe()
    provider = context.Process(target=provide, args=(theirs, provider_ms), daemon=True)
    provider.start()
    try:
        settings.SMS_PROVIDER_URL = pipe.recv()
        settings.RETENTION_CHANNELS = {
            **settings.RETENTION_CHANNELS,
            "sms": "retention.channels.sms.HttpSmsChannel",
        }
        started = time.perf_counter()
        totals = outbox_flush(now=timezone.now())
        seconds = time.perf_counter() - started
        pipe.send("done")
        delivered = pipe.recv()
    finally:
        provider.join(timeout=10)
    print(
        f"outbox: {totals['sent']:,} messages sent to a local HTTP provider (its own process) "
        f"answering in {provider_ms:g} ms, {settings.OUTBOX_CONCURRENCY} in flight, in "
        f"{seconds:.1f} s = {totals['sent'] / seconds:,.0f} messages/s (target >= 500); "
        f"{delivered:,} distinct deliveries"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--provider-ms", type=float, default=0.0)
    args = parser.parse_args()

    bootstrap.ready()
    clean()
    run = scored_run()
    print(f"scoring run #{run.pk} as of {run.as_of}: {run.customers_scored:,} customers")
    pipeline(run)
    outbox(args.messages, args.provider_ms)


if __name__ == "__main__":
    main()
