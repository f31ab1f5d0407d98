import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from customers.privacy import customer_export
from customers.selectors import CustomerNotFound, customer_by_external_id


class Command(BaseCommand):
    help = (
        "Print (or write to --output) one JSON document of everything held about one "
        "customer: profile, orders, events, scores, alerts, offers, messages, audit entries."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", help="the customer's external id")
        parser.add_argument("--output", metavar="FILE", help="write the document to FILE")

    def handle(self, *args, **options):
        try:
            customer = customer_by_external_id(options["external_id"])
        except CustomerNotFound as exc:
            raise CommandError(str(exc)) from exc
        document = customer_export(customer=customer, now=timezone.now())
        text = json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        if not options["output"]:
            return text
        with open(options["output"], "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        return f"Exported customer {customer.external_id} to {options['output']}"
