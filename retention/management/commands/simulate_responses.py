"""Synthetic customers who received offers react per their ground truth (demo, tests)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from core.cli import add_as_of, as_of
from retention.services.simulation import responses_simulate


class Command(BaseCommand):
    help = "Apply the synthetic shop's true offer responses to customers sent an offer."

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        done = responses_simulate(as_of=as_of(options))
        return (
            f"{done['simulated']} responses simulated: {done['extra_orders']} extra orders, "
            f"{done['left']} customers left because of the offer"
        )
