"""Numbers as people read them, for the console and the admin: shares as percentages,
differences of shares in percentage points (said so), money with its currency."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

MISSING = "-"  # no value
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def percent(value: float | None, places: int = 0) -> str:
    """0.9417 → "94%"; None → "-"."""
    if value is None or value != value:
        return MISSING
    return f"{float(value) * 100:.{places}f}%"


def points(value: float | None, places: int = 1) -> str:
    """A difference of two shares: 0.062 → "+6.2 pp" (percentage points)."""
    if value is None or value != value:
        return MISSING
    return f"{float(value) * 100:+.{places}f} pp"


def money(value: float | Decimal | None, currency: str = "", places: int = 2) -> str:
    """631.44 → "€631.44"; currencies without a symbol keep their code ("631.44 SEK")."""
    if value is None:
        return MISSING
    code = (currency or settings.SHOP_CURRENCY).upper()
    amount = f"{abs(float(value)):,.{places}f}"
    sign = "-" if float(value) < 0 else ""
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {code}"
