"""What a customer reads: the admin's templates per channel and offer type, rendered with
the offer, the coupon and the recommended products."""

from __future__ import annotations

from django.conf import settings
from django.template import Context, Engine

from customers.models import Customer, OfferType, Product
from retention.models import Coupon, Intervention, MessageTemplate

_ENGINE = Engine(autoescape=False)  # plain text: email bodies and SMS, not HTML

# The usual reasons to dismiss an offer, offered by the bot and the console alike.
DISMISS_REASONS = {
    "contacted": "already in contact with the customer",
    "complaint": "customer has an open complaint",
    "irrelevant": "offer not relevant for this customer",
}


def offer_text(offer_type: str, value) -> str:
    """The offer in a few words, e.g. "10% off your next order"."""
    amount = f"{value:g}" if isinstance(value, float) else f"{value.normalize():f}"
    return {
        OfferType.PERCENT_OFF: f"{amount}% off your next order",
        OfferType.FIXED_AMOUNT: f"{amount} off your next order",
        OfferType.FREE_SHIPPING: "free shipping on your next order",
        OfferType.LOYALTY_POINTS: f"{amount} bonus loyalty points",
        OfferType.PRODUCT_RECOMMENDATION: "a few picks we think you will like",
    }[OfferType(offer_type)]


def template_for(channel: str, offer_type: str) -> MessageTemplate:
    """The template for this offer type on this channel, or the channel's general one."""
    found = {
        t.offer_type: t
        for t in MessageTemplate.objects.filter(channel=channel, offer_type__in=[offer_type, ""])
    }
    template = found.get(offer_type) or found.get("")
    if template is None:
        raise MessageTemplate.DoesNotExist(f"no message template for the {channel} channel")
    return template


def context_for(
    intervention: Intervention, customer: Customer, coupon: Coupon | None
) -> dict[str, object]:
    products = Product.objects.filter(sku__in=intervention.recommended_skus)
    return {
        "shop": settings.SHOP_NAME,
        "first_name": (customer.name.split() or ["there"])[0],
        "customer": customer,
        "offer": offer_text(intervention.offer_type, intervention.offer_value),
        "coupon": coupon,
        "products": list(products),
        "campaign": intervention.campaign,
    }


def render(template: MessageTemplate, context: dict[str, object]) -> tuple[str, str]:
    ctx = Context(context)
    subject = _ENGINE.from_string(template.subject).render(ctx).strip()
    body = _ENGINE.from_string(template.body).render(ctx).strip()
    return subject, body
