from django.core.management.base import BaseCommand, CommandError

from core.cli import add_as_of, as_of
from ml.services import train_models
from ml.training import ALGORITHMS


class Command(BaseCommand):
    help = (
        "Train the model zoo, register the candidates and promote the best if it passes the gate."
    )

    def add_arguments(self, parser):
        add_as_of(parser)
        parser.add_argument(
            "--algorithms",
            default=",".join(ALGORITHMS),
            help=f"comma-separated subset of: {', '.join(ALGORITHMS)}",
        )

    def handle(self, *args, **options):
        try:
            result = train_models(as_of=as_of(options), algorithms=options["algorithms"].split(","))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{'model':<26}{'AUC':>8}{'PR AUC':>8}{'Brier':>8}{'fit s':>8}")
        for v in sorted(result.candidates, key=lambda v: -v.metrics["auc"]):
            m = v.metrics
            self.stdout.write(
                f"#{v.pk:<4}{v.algorithm:<21}{m['auc']:>8.4f}{m['pr_auc']:>8.4f}"
                f"{m['brier']:>8.4f}{v.fit_seconds:>8.1f}"
            )
        verdict = "promoted to champion" if result.promoted else "kept the champion"
        self.stdout.write(
            self.style.SUCCESS(f"best: #{result.best.pk} {result.best.algorithm}, {verdict}")
            + f" ({result.gate})"
        )
