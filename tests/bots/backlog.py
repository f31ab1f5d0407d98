"""A backlog of alert cards for one chat, and how often each was posted there."""

from __future__ import annotations

from collections import Counter

from bots.models import QueueChat
from customers.models import Customer
from retention.models import Alert, RiskRule
from tests.factories import AS_OF, NOW
from tests.fakes.bot_api import FakeBotApi

CHAT = 1001
BACKLOG = 600


def backlog_alerts() -> int:
    """A case on the to-do list for each of BACKLOG customers, all for one queue chat:
    enough cards to outlast several of the pusher's leases, few enough to stay quick."""
    QueueChat.objects.create(queue="shared", chat_id=CHAT)
    people = Customer.objects.bulk_create(
        Customer(external_id=f"b{n:04d}", name=f"Backlog {n}") for n in range(BACKLOG)
    )
    rule = RiskRule.objects.get(name="High churn risk")
    Alert.objects.bulk_create(
        Alert(
            customer=person,
            rule=rule,
            severity="high",
            as_of=AS_OF,
            raised_at=NOW,
            probability=0.9,
            tier="high",
            value_at_risk=100.0,
            priority=float(BACKLOG - n),
            planned_on=AS_OF,
        )
        for n, person in enumerate(people)
    )
    return BACKLOG


def posted_in_order(telegram: FakeBotApi) -> list[str]:
    """The customers whose cards reached the chat, in the order they arrived."""
    return [
        m["text"].split("\n")[1].split(" · ")[0]
        for m in telegram.sent()
        if int(m["chat_id"]) == CHAT
    ]


def posted(telegram: FakeBotApi) -> Counter[str]:
    """How many times each customer's card was posted to the chat."""
    return Counter(posted_in_order(telegram))
