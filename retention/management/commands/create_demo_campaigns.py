"""Demo campaigns: one finished last month (replayed, so its outcome can be shown) and one
running now that waits for agents' approval."""

from __future__ import annotations

import datetime as dt

from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.cli import add_as_of, as_of
from retention.models import Campaign, Offer, RiskRule

REPLAY_DAYS = 45  # the past campaign started this long before the demo's day
WINDOW_DAYS = 30


class Command(BaseCommand):
    help = (
        "Create the demo's campaigns: replay a past automatic campaign end to end (score, "
        "alerts, offers, sending, synthetic responses, outcome) and start an agent-approved one."
    )

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        today = as_of(options)
        past = today - dt.timedelta(days=REPLAY_DAYS)
        offers = Offer.objects.filter(is_active=True)
        replay, created = Campaign.objects.get_or_create(
            name="Last month's win-back (automatic)",
            defaults={
                "goal": "Bring back high-risk customers with the offer worth most to each.",
                "target_rule": RiskRule.objects.get(name="High churn risk"),
                "approval_mode": Campaign.Approval.AUTOMATIC,
                "channels": ["email", "sms"],
                "control_share": 0.3,
                "starts_on": past,
                "ends_on": past,
                "window_days": WINDOW_DAYS,
                "status": Campaign.Status.ACTIVE,
            },
        )
        if created:
            replay.offers.set(offers)
            day = past.isoformat()
            call_command("run_pipeline", "--as-of", day, stdout=self.stdout)
            call_command("send_outbox", "--as-of", (past + dt.timedelta(days=1)).isoformat())
            call_command("simulate_responses", "--as-of", today.isoformat(), stdout=self.stdout)
            call_command("evaluate_campaigns", "--as-of", today.isoformat(), stdout=self.stdout)
            replay.status = Campaign.Status.FINISHED
            replay.save(update_fields=["status"])
        live, created = Campaign.objects.get_or_create(
            name="Win back high-risk customers",
            defaults={
                "goal": "Agents approve a personal offer for each high-risk customer.",
                "target_rule": RiskRule.objects.get(name="High churn risk"),
                "approval_mode": Campaign.Approval.AGENT,
                "channels": ["email", "sms"],
                "control_share": 0.1,
                "starts_on": today,
                "max_offers": 500,
                "window_days": WINDOW_DAYS,
                "status": Campaign.Status.ACTIVE,
            },
        )
        if created:
            live.offers.set(offers)
        return f"demo campaigns ready: '{replay.name}' (measured) and '{live.name}' (running)"
