"""The contact policy, in one place: may this customer be contacted now, on which channel,
and if not, why. Checked right before a message is queued, for a batch at once.

Order of checks: marketing opt-out, an open support ticket, the frequency caps across all
channels, then the campaign's channels in order of preference (consent and an address).
Quiet hours do not block: the message waits until they end in the customer's time zone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q

from customers.models import Channel, Customer, Event
from retention.channels import channel_available
from retention.models import ContactPolicy, OutboxMessage

OPTED_OUT = "the customer opted out of marketing"
TICKET_OPEN = "a support ticket is open (since {since:%Y-%m-%d})"
CAP_7 = "frequency cap: {n} message(s) in the last 7 days (at most {cap})"
CAP_30 = "frequency cap: {n} message(s) in the last 30 days (at most {cap})"
NO_CHANNEL = "no consent and address on any campaign channel ({channels})"

_CLOSED = {"closed", "resolved", "solved"}
_COUNTED = [
    OutboxMessage.State.PENDING,
    OutboxMessage.State.SENDING,
    OutboxMessage.State.SENT,
    OutboxMessage.State.DELIVERED,
]


@dataclass(frozen=True)
class Decision:
    channel: str = ""
    recipient: str = ""
    send_after: dt.datetime | None = None
    blocked: str = ""


def _address(customer: Customer, channel: str) -> str:
    if channel == Channel.EMAIL:
        return customer.email
    if channel == Channel.SMS:
        return customer.phone
    return customer.external_id  # the shop's app knows its customers by their id


def after_quiet_hours(policy: ContactPolicy, when: dt.datetime, tz_name: str) -> dt.datetime:
    """``when``, or the end of the customer's quiet hours if ``when`` falls inside them."""
    start, end = policy.quiet_start_hour, policy.quiet_end_hour
    if start == end:
        return when
    try:
        tz = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = dt.UTC
    local = when.astimezone(tz)
    quiet = (start <= local.hour or local.hour < end) if start > end else start <= local.hour < end
    if not quiet:
        return when
    wake = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if wake <= local:
        wake += dt.timedelta(days=1)
    return wake.astimezone(dt.UTC)


def contact_decisions(wanted: list[tuple[int, list[str]]], *, now: dt.datetime) -> list[Decision]:
    """One decision per ``(customer id, channels in order of preference)``, in order.

    Earlier entries of the batch count against the caps of later ones, so two campaigns
    reaching one customer in the same batch cannot both slip under a cap of one.
    """
    policy = ContactPolicy.current()
    ids = {customer_id for customer_id, _ in wanted}
    customers = Customer.objects.in_bulk(ids)
    recent = (
        OutboxMessage.objects.filter(
            intervention__customer_id__in=ids,
            state__in=_COUNTED,
            created_at__gt=now - dt.timedelta(days=30),
        )
        .values("intervention__customer_id")
        .annotate(
            last_30=Count("id"),
            last_7=Count("id", filter=Q(created_at__gt=now - dt.timedelta(days=7))),
        )
    )
    last_7 = Counter({r["intervention__customer_id"]: r["last_7"] for r in recent})
    last_30 = Counter({r["intervention__customer_id"]: r["last_30"] for r in recent})
    tickets = _open_tickets(ids, policy, now) if policy.block_while_ticket_open else {}

    decisions = []
    for customer_id, channels in wanted:
        customer = customers[customer_id]
        decision = _decide(policy, customer, channels, now, tickets, last_7, last_30)
        if not decision.blocked:
            last_7[customer_id] += 1
            last_30[customer_id] += 1
        decisions.append(decision)
    return decisions


def _decide(policy, customer, channels, now, tickets, last_7, last_30) -> Decision:
    if customer.marketing_opt_out:
        return Decision(blocked=OPTED_OUT)
    if customer.pk in tickets:
        return Decision(blocked=TICKET_OPEN.format(since=tickets[customer.pk]))
    if last_7[customer.pk] >= policy.max_per_7_days:
        return Decision(blocked=CAP_7.format(n=last_7[customer.pk], cap=policy.max_per_7_days))
    if last_30[customer.pk] >= policy.max_per_30_days:
        return Decision(blocked=CAP_30.format(n=last_30[customer.pk], cap=policy.max_per_30_days))
    for channel in channels:
        address = _address(customer, channel)
        if customer.has_consent(channel) and address and channel_available(channel):
            send_after = after_quiet_hours(policy, now, customer.time_zone)
            return Decision(channel, address, send_after if send_after > now else None)
    return Decision(blocked=NO_CHANNEL.format(channels=", ".join(channels)))


def _open_tickets(ids: set[int], policy: ContactPolicy, now: dt.datetime) -> dict[int, dt.datetime]:
    """Customers with a support ticket in the last ``ticket_open_days`` that the shop has not
    marked closed, with when the oldest such ticket was opened."""
    tickets = Event.objects.filter(
        customer_id__in=ids,
        kind=Event.Kind.SUPPORT_TICKET,
        occurred_at__gt=now - dt.timedelta(days=policy.ticket_open_days),
        occurred_at__lte=now,
    ).order_by("-occurred_at")
    # Filtered here rather than in SQL: a key missing from the JSON (no status sent) must
    # count as open, and JSON-key NULL semantics differ between databases.
    return {
        customer_id: opened
        for customer_id, opened, properties in tickets.values_list(
            "customer_id", "occurred_at", "properties"
        )
        if str((properties or {}).get("status", "")).lower() not in _CLOSED
    }
