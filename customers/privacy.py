"""Privacy rights of one customer: everything held about them (export, GDPR art. 15) and
the removal of their personal data (erasure, art. 17).

Shop data lives here, but scores, the workflow and chat cards live in apps above this one,
which this app must not import. So each app registers a contributor from its
``AppConfig.ready()``: a section of the export and its share of the erasure. The customer
row itself is kept, pseudonymised, because campaign measurement counts customers and their
orders by arm; only what identifies the person is removed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.db.models import Q, QuerySet

from customers.models import Customer, Event, Order, OrderLine, SyntheticResponse, SyntheticTruth
from customers.signals import customer_erased

# What replaces personal data inside texts that are kept (generated reasons, audit details).
ERASED = "[erased]"
EXPORT_FORMAT = "customer-export/1"
# Shorter values (a two-letter name) would match unrelated text in shared files.
MIN_NEEDLE_LENGTH = 3


def mask_email(email: str) -> str:
    """``j***@example.com``: enough for staff to recognise a contact, not to use it."""
    if "@" not in email:
        return ""
    name, domain = email.split("@", 1)
    return f"{name[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    """``+49***73``."""
    digits = phone.replace(" ", "")
    return f"{digits[:3]}***{digits[-2:]}" if len(digits) > 5 else ""


@dataclass(frozen=True)
class Erasure:
    """One erasure in progress: whose data, the personal values to look for in texts
    that other apps keep, when, and who asked through which surface."""

    customer: Customer
    needles: tuple[str, ...]
    at: dt.datetime
    actor: Any  # the staff user who asked, or None (a command run without --by)
    via: str

    def holds_personal_data(self, text: str) -> bool:
        lowered = text.lower()
        return any(needle in lowered for needle in self.needles)

    def redact(self, value: Any) -> Any:
        """``value`` (text or JSON) with every string holding a personal value replaced."""
        if isinstance(value, str):
            return ERASED if self.holds_personal_data(value) else value
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if isinstance(value, dict):
            return {key: self.redact(item) for key, item in value.items()}
        return value


def personal_values(customer: Customer) -> tuple[str, ...]:
    """Lower-cased name, e-mail and phone (also without spaces) to look for in texts."""
    phone = customer.phone.strip()
    values = {customer.name.strip(), customer.email.strip(), phone, phone.replace(" ", "")}
    return tuple(sorted(v.lower() for v in values if len(v) >= MIN_NEEDLE_LENGTH))


@dataclass(frozen=True)
class Contributor:
    export: Callable[[Customer], Any]
    erase: Callable[[Erasure], dict[str, int]]


_contributors: dict[str, Contributor] = {}


def privacy_register(
    *,
    section: str,
    export: Callable[[Customer], Any],
    erase: Callable[[Erasure], dict[str, int]],
) -> None:
    """Add an app's part: ``export(customer)`` gives the export's ``section``;
    ``erase(erasure)`` removes the app's personal data and returns counts of what it
    changed. Registering a section again replaces it (``ready()`` may run twice)."""
    _contributors[section] = Contributor(export=export, erase=erase)


def rows(queryset: QuerySet) -> list[dict[str, Any]]:
    """Every column of every row, as stored: an export must not pick and choose."""
    return list(queryset.values())


def _shop_export(customer: Customer) -> dict[str, Any]:
    orders = rows(Order.objects.filter(customer=customer).order_by("placed_at", "id"))
    lines: dict[int, list[dict[str, Any]]] = {}
    for line in rows(OrderLine.objects.filter(order__customer=customer)):
        lines.setdefault(line["order_id"], []).append(line)
    for order in orders:
        order["lines"] = lines.get(order["id"], [])
    return {
        "profile": rows(Customer.objects.filter(pk=customer.pk))[0],
        "orders": orders,
        "events": rows(Event.objects.filter(customer=customer).order_by("occurred_at", "id")),
        "synthetic_truth": rows(SyntheticTruth.objects.filter(customer=customer)),
        "synthetic_responses": rows(SyntheticResponse.objects.filter(customer=customer)),
    }


def customer_export(*, customer: Customer, now: dt.datetime) -> dict[str, Any]:
    """One JSON-ready document of everything held about ``customer``, app by app."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "external_id": customer.external_id,
        "exported_at": now,
        "customers": _shop_export(customer),
    }
    for section, contributor in _contributors.items():
        document[section] = contributor.export(customer)
    return document


def _admin_log_erase(erasure: Erasure) -> int:
    """The console's change history names objects by ``str()``: the customer by name, an
    outbox message by its recipient; and change messages may quote changed values."""
    if not erasure.needles:
        return 0
    holding = Q()
    for needle in erasure.needles:
        holding |= Q(object_repr__icontains=needle) | Q(change_message__icontains=needle)
    entries = list(LogEntry.objects.filter(holding))
    for entry in entries:
        entry.object_repr = erasure.redact(entry.object_repr)
        entry.change_message = erasure.redact(entry.change_message)
    LogEntry.objects.bulk_update(entries, ["object_repr", "change_message"])
    return len(entries)


def _shop_erase(erasure: Erasure) -> dict[str, int]:
    customer = erasure.customer
    log_entries = _admin_log_erase(erasure)
    # Event properties are free text from the shop (review texts, ticket subjects).
    events = Event.objects.filter(customer=customer).exclude(properties={}).update(properties={})
    customer.name = customer.email = customer.phone = ""
    customer.attributes = {}
    # Nobody may contact a person who asked to be forgotten, whatever consent they gave.
    customer.email_consent = customer.sms_consent = customer.webhook_consent = False
    if not customer.marketing_opt_out:
        customer.marketing_opt_out, customer.marketing_opt_out_at = True, erasure.at
    customer.erased_at = customer.erased_at or erasure.at
    customer.save()
    return {"customers": 1, "events": events, "admin_log_entries": log_entries}


def customer_erase(
    *, customer: Customer, actor: Any, via: str, now: dt.datetime
) -> dict[str, dict[str, int]]:
    """Remove ``customer``'s personal data from every app, keep the pseudonymised row and
    their orders (campaign arms and conversions are counted from them), and record the
    erasure. Running it again finds nothing new to remove and succeeds."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        erasure = Erasure(
            customer=customer, needles=personal_values(customer), at=now, actor=actor, via=via
        )
        # The other apps first: they look for the personal values the customer row holds.
        counts = {section: c.erase(erasure) for section, c in _contributors.items()}
        counts["customers"] = _shop_erase(erasure)
        customer_erased.send(
            sender=Customer, customer=customer, actor=actor, via=via, at=now, counts=counts
        )
    return counts
