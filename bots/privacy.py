"""Chat cards in a customer's export and erasure (registered with ``customers.privacy`` by
``BotsConfig.ready``).

Cards are stored as where they went (chat and message), never as text: their text is drawn
from the alert each time, with the contact masked, so a card drawn after the erasure shows
the external id only; cards already posted are redrawn once the erasure commits (see
``BotsConfig.ready``). Open prompts about the customer's offers are dropped, since the
offers are blocked by then.
"""

from __future__ import annotations

from typing import Any

from bots.models import AlertCard, ChatPrompt
from customers.models import Customer
from customers.privacy import Erasure, rows
from retention.models import Intervention


def _prompts(customer: Customer):
    offers = Intervention.objects.filter(customer=customer).values("pk")
    return ChatPrompt.objects.filter(intervention_id__in=offers)


def cards_export(customer: Customer) -> dict[str, Any]:
    return {
        "alert_cards": rows(
            AlertCard.objects.filter(alert__customer=customer).order_by("created_at", "id")
        ),
        "chat_prompts": rows(_prompts(customer).order_by("id")),
    }


def cards_erase(erasure: Erasure) -> dict[str, int]:
    prompts, _ = _prompts(erasure.customer).delete()
    return {"chat_prompts": prompts}
