"""Score, raise alerts and propose interventions for one day (what beat runs nightly)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from core.cli import add_as_of, as_of
from core.time import moment
from ml.selectors import NotReady
from retention.services.pipeline import nightly_pipeline


class Command(BaseCommand):
    help = (
        "Score everyone, then fold rule hits into cases, propose interventions and plan each "
        "queue's day within its capacity (idempotent per day)."
    )

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        day = as_of(options)
        try:
            summary = nightly_pipeline(as_of=day, now=moment(options["as_of"]))
        except NotReady as exc:
            raise CommandError(str(exc)) from exc
        listed = sum(summary["alerts"].values())
        proposed = summary["interventions"]
        plan = summary["plan"]
        self.stdout.write(
            self.style.SUCCESS(f"{day}: {listed} new case reasons")
            + f" ({json.dumps(summary['alerts'])}); interventions {json.dumps(proposed)}; "
            f"to do today {plan['to_do']}, watching {plan['watching']}; "
            f"{summary['won_back']} cases closed as won back; seconds {summary['seconds']}"
        )
