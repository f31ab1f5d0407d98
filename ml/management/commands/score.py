from django.core.management.base import BaseCommand, CommandError

from core.cli import add_as_of, as_of
from ml.selectors import NotReady
from ml.services import score_customers


class Command(BaseCommand):
    help = (
        "Score every customer with the champion model: probability, tier, value at risk, reasons."
    )

    def add_arguments(self, parser):
        add_as_of(parser)

    def handle(self, *args, **options):
        try:
            run = score_customers(as_of=as_of(options))
        except NotReady as exc:
            raise CommandError(str(exc)) from exc
        tiers = ", ".join(f"{k} {v}" for k, v in sorted(run.tier_counts.items()))
        self.stdout.write(
            self.style.SUCCESS(f"scored {run.customers_scored} customers as of {run.as_of}")
            + f" with model #{run.model_version_id} ({tiers}); seconds {run.seconds}"
        )
        if run.drift_flagged:
            worst = max(run.drift, key=run.drift.get)
            self.stdout.write(
                self.style.WARNING(f"drift: PSI {run.max_psi:.2f} on {worst} (above 0.25)")
            )
