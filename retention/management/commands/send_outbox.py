"""Send every due outbox message now (what the one-minute flush does)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from core.cli import add_as_of
from core.time import moment
from retention.services.outbox import outbox_flush


class Command(BaseCommand):
    help = (
        "Send due outbox messages in this process until none is due. With --as-of (a replay) "
        "the moment is the end of that day, so messages deferred by quiet hours before it go."
    )

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        totals = outbox_flush(now=moment(options["as_of"]))
        return ", ".join(f"{v} {k}" for k, v in totals.items())
