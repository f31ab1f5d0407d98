import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer, Event, Order
from customers.selectors import shop_has_data
from customers.synthetic.process import REGIMES
from customers.synthetic.services import ShopExists, generate_shop


class Command(BaseCommand):
    help = "Generate a synthetic shop with known ground truth (same seed, same shop)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=5000)
        parser.add_argument("--days", type=int, default=730)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--end",
            type=dt.date.fromisoformat,
            required=True,
            help="last day of history, YYYY-MM-DD",
        )
        parser.add_argument("--horizon-days", type=int, default=90)
        parser.add_argument(
            "--regime",
            choices=sorted(REGIMES),
            default="default",
            help="generating process: e.g. 'transactions' keeps only paid orders, "
            "'missing_events' records no events for a third of the customers",
        )
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--replace", action="store_true", help="delete all shop data first")
        group.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the database already has customers",
        )

    def handle(self, *args, **o):
        if o["customers"] < 1 or o["days"] < 30:
            raise CommandError("--customers must be >= 1 and --days >= 30")
        if o["if_empty"] and shop_has_data():
            self.stdout.write("The database already has shop data; not generating a shop.")
            return
        started = time.perf_counter()
        try:
            shop = generate_shop(
                customers=o["customers"],
                days=o["days"],
                seed=o["seed"],
                end=o["end"],
                horizon_days=o["horizon_days"],
                replace=o["replace"],
                process=REGIMES[o["regime"]],
            )
        except ShopExists as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {shop} in {time.perf_counter() - started:.1f} s: "
                f"{Customer.objects.count():,} customers, {Order.objects.count():,} orders, "
                f"{Event.objects.count():,} events"
            )
        )
