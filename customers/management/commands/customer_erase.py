from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from customers.privacy import customer_erase
from customers.selectors import CustomerNotFound, customer_by_external_id

NO_SUCH_USER = "no staff user named {username!r}"


class Command(BaseCommand):
    help = (
        "Erase one customer's personal data everywhere (tables, scoring-run files, "
        "sent-message files), keeping the anonymous counts campaigns are measured by. "
        "Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", help="the customer's external id")
        parser.add_argument("--by", metavar="USERNAME", help="the staff user asking, for the audit")

    def handle(self, *args, **options):
        actor = None
        if options["by"]:
            actor = get_user_model().objects.filter(username=options["by"], is_staff=True).first()
            if actor is None:
                raise CommandError(NO_SUCH_USER.format(username=options["by"]))
        try:
            customer = customer_by_external_id(options["external_id"])
        except CustomerNotFound as exc:
            raise CommandError(str(exc)) from exc
        counts = customer_erase(customer=customer, actor=actor, via="command", now=timezone.now())
        changed = ", ".join(
            f"{section}.{name} {n}" for section, part in counts.items() for name, n in part.items()
        )
        return f"Erased customer {customer.external_id}: {changed}"
