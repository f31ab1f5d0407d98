"""Reads for the chat surface: who is behind a chat, the cards to push, and the short
views an agent asks for (my cases, a customer, today's numbers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import F, Q, QuerySet, Sum

from bots.models import AlertCard, ChatLink, ChatPrompt
from core.roles import ADMIN, AGENT
from customers.models import Customer
from ml.selectors import score_history
from retention.models import Alert, AuditEntry, Campaign, OutboxMessage

User = get_user_model()


def staff_for_chat(chat_id: int, platform: str = "telegram"):
    """The active Agent or Admin linked to the chat, or None. Staff status is required as
    in the admin and the API, so clearing it switches the account off everywhere."""
    link = ChatLink.objects.select_related("user").filter(platform=platform, chat_id=chat_id)
    link = link.first()
    if link is None or not (link.user.is_active and link.user.is_staff):
        return None
    user = link.user
    if user.is_superuser or user.groups.filter(name__in=[ADMIN, AGENT]).exists():
        return user
    return None


def chat_of_user(user, platform: str = "telegram") -> int | None:
    return (
        ChatLink.objects.filter(platform=platform, user=user)
        .values_list("chat_id", flat=True)
        .first()
    )


def cards_by_id(ids: list[int]) -> list[AlertCard]:
    """The cards with what their text shows, highest priority first."""
    return list(
        AlertCard.objects.filter(pk__in=ids)
        .select_related("alert__customer", "alert__rule", "alert__assigned_to")
        .order_by("-priority", "created_at", "pk")
    )


def cards_of_alert(alert_id: int) -> QuerySet[AlertCard]:
    return AlertCard.objects.filter(alert_id=alert_id, state=AlertCard.State.SENT)


def posted_cards(alert_ids: list[int]) -> QuerySet[AlertCard]:
    """Cards of these alerts that a chat shows (they have a message to edit)."""
    return AlertCard.objects.filter(
        alert_id__in=alert_ids, message_id__isnull=False
    ).select_related("alert__customer", "alert__rule", "alert__assigned_to")


def open_prompt(chat_id: int, now: dt.datetime) -> ChatPrompt | None:
    return ChatPrompt.objects.filter(
        platform="telegram", chat_id=chat_id, expires_at__gt=now
    ).first()


def my_alerts(user) -> QuerySet[Alert]:
    """Open cases assigned to the user and unassigned ones of the shared queues: today's
    to-do first, each part by priority (what acting on the case is worth)."""
    return (
        Alert.objects.filter(state__in=Alert.OPEN_STATES)
        .filter(Q(assigned_to=user) | Q(assigned_to__isnull=True))
        .select_related("customer", "rule")
        .order_by(F("planned_on").desc(nulls_last=True), "-priority", "pk")
    )


def find_customer(query: str) -> Customer | None:
    query = query.strip()
    if "@" in query:
        return Customer.objects.filter(email__iexact=query).first()
    return Customer.objects.filter(external_id=query).first()


@dataclass
class CustomerView:
    customer: Customer
    orders: int
    spend: float
    last_order: dt.datetime | None
    last_contact: OutboxMessage | None
    scores: list
    open_alerts: list[Alert]


def customer_view(customer: Customer) -> CustomerView:
    orders = customer.orders.filter(status="paid")
    return CustomerView(
        customer=customer,
        orders=orders.count(),
        spend=float(orders.aggregate(total=Sum("total"))["total"] or 0),
        last_order=orders.order_by("-placed_at").values_list("placed_at", flat=True).first(),
        last_contact=OutboxMessage.objects.filter(
            intervention__customer=customer, sent_at__isnull=False
        )
        .order_by("-sent_at")
        .first(),
        scores=list(score_history(customer.pk)[:5]),
        open_alerts=list(
            customer.alerts.filter(state__in=Alert.OPEN_STATES).select_related("rule")
        ),
    )


@dataclass
class Stats:
    alerts_raised: int
    approvals: int
    sends: int
    campaigns: list[tuple[str, str]]


def stats_today(now: dt.datetime) -> Stats:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    campaigns = []
    for campaign in Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("name"):
        outcome = campaign.outcomes.first()
        campaigns.append((campaign.name, outcome.verdict if outcome else "not measured yet"))
    return Stats(
        alerts_raised=Alert.objects.filter(raised_at__gte=start).count(),
        approvals=AuditEntry.objects.filter(
            at__gte=start, action__in=[AuditEntry.Action.APPROVED, AuditEntry.Action.EDITED]
        ).count(),
        sends=OutboxMessage.objects.filter(sent_at__gte=start).count(),
        campaigns=campaigns,
    )
