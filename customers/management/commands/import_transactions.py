from django.core.management.base import BaseCommand

from customers.importing.cli import add_common_arguments, report, run_import


class Command(BaseCommand):
    help = (
        "Import a plain transaction log: one purchase per line. Creates missing customers "
        "and one paid order per line; re-importing the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--customer-col", required=True)
        parser.add_argument("--date-col", required=True)
        parser.add_argument("--amount-col", required=True)
        parser.add_argument("--quantity-col")
        parser.add_argument("--sku-col")
        parser.add_argument("--currency", default="EUR")
        add_common_arguments(parser)

    def handle(self, *args, **options):
        mapping = {
            options["customer_col"]: "customer",
            options["date_col"]: "placed_at",
            options["amount_col"]: "amount",
        }
        if options["quantity_col"]:
            mapping[options["quantity_col"]] = "quantity"
        if options["sku_col"]:
            mapping[options["sku_col"]] = "sku"
        result = run_import(kind="transactions", mapping=mapping, options=options)
        report(self, result)
