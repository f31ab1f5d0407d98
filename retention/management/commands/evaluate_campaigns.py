"""Settle interventions and measure every campaign's arms for one day."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from core.cli import add_as_of, as_of
from core.time import moment
from retention.services.outcomes import campaigns_evaluate, interventions_settle


class Command(BaseCommand):
    help = "Mark converted/expired offers, then compare treatment with control per campaign."

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        day = as_of(options)
        settled = interventions_settle(now=moment(options["as_of"]))
        self.stdout.write(f"{settled['converted']} converted, {settled['expired']} expired")
        for outcome in campaigns_evaluate(as_of=day):
            t, c = outcome.arms["treatment"], outcome.arms["control"]
            self.stdout.write(
                f"{outcome.campaign.name}: treatment {t['retained']}/{t['customers']} retained, "
                f"control {c['retained']}/{c['customers']}; {outcome.verdict}; "
                f"net incremental revenue {outcome.net_incremental_revenue}"
            )
