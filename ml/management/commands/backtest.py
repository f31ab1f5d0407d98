import json

from django.core.management.base import BaseCommand, CommandError

from core.cli import add_as_of, as_of
from ml.backtest import backtest
from ml.training import ALGORITHMS


class Command(BaseCommand):
    help = (
        "Train every model as of AS_OF - N, score at AS_OF and judge on (AS_OF, AS_OF + N]; "
        "the data must reach AS_OF + N."
    )

    def add_arguments(self, parser):
        add_as_of(parser)
        parser.add_argument("--horizon-days", type=int, default=90)
        parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
        parser.add_argument("--json", action="store_true", help="one JSON object per model")

    def handle(self, *args, **options):
        try:
            results = backtest(
                as_of=as_of(options),
                horizon_days=options["horizon_days"],
                algorithms=options["algorithms"].split(","),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2, default=str))
            return
        header = f"{'model':<22}{'AUC':>8}{'PR AUC':>8}{'Brier':>8}{'lift@10%':>10}{'val AUC':>9}"
        self.stdout.write(header)
        for r in results:
            mark = " <- champion" if r["champion"] else ""
            self.stdout.write(
                f"{r['model']:<22}{r['auc']:>8.4f}{r['pr_auc']:>8.4f}{r['brier']:>8.4f}"
                f"{r['top_decile_lift']:>10.2f}{r['validation_auc']:>9.4f}{mark}"
            )
