from django.core.management.base import BaseCommand, CommandError

from customers.importing.cli import add_common_arguments, report, run_import


class Command(BaseCommand):
    help = (
        "Import shop data from a CSV file with a header row. Orders: one row per order line "
        "(order_id, customer, placed_at, sku, quantity, unit_price, ...)."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["customers", "products", "orders", "events"])
        parser.add_argument("file")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help="use the file's COLUMN for FIELD (repeatable)",
        )
        add_common_arguments(parser)

    def handle(self, *args, **options):
        mapping = {}
        for item in options["map"]:
            column, sep, field = item.partition("=")
            if not sep or not column or not field:
                raise CommandError(f"--map {item!r}: write it as column=field")
            mapping[column] = field
        result = run_import(kind=options["kind"], mapping=mapping, options=options)
        report(self, result)
