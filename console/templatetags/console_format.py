"""Template filters for numbers as people read them (see ``core.formatting``)."""

from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

from core import formatting
from retention.messages import offer_text
from retention.selectors import COUNT_CAP

register = template.Library()


@register.filter
def percent(value, places: int = 0) -> str:
    return formatting.percent(value, int(places))


@register.filter
def pp(value) -> str:
    return formatting.points(value)


@register.filter
def money(value, currency: str = "") -> str:
    return formatting.money(value, currency)


@register.filter
def capped(count: int) -> str:
    """A count read up to ``COUNT_CAP``: past it, "1,000+"."""
    return f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"


@register.filter
def offer(intervention) -> str:
    """The offer in a few words ("10% off your next order")."""
    return offer_text(intervention.offer_type, intervention.offer_value)


@register.filter
def svg(markup: str):
    """A chart from ``core.charts``, whose functions escape every text they draw."""
    return mark_safe(markup)
