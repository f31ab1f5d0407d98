"""What each CSV kind may contain, and vectorised parsing of one chunk of text columns.

Every parser takes a column of strings (already stripped of surrounding blanks) and
returns the parsed column plus a boolean mask of rows it rejects with a reason, so a
chunk of 100,000 rows is checked with a handful of pandas operations instead of 100,000
Python calls.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from customers.models import Event, Order

# A parser returns the parsed column and its problems: (mask of rejected rows, reason).
Problems = list[tuple[pd.Series, str]]
Parser = Callable[[pd.Series, "ParseOptions"], tuple[pd.Series, Problems]]

# What the columns can hold (customers.models): money is NUMERIC(12, 2), a quantity a
# 32-bit integer, a line's position a smallint. Values beyond these made PostgreSQL refuse
# a whole batch and SQLite store numbers its decimal converter cannot read back.
AMOUNT_LIMIT = 10**10  # NUMERIC(12, 2) holds amounts below this
QUANTITY_MAX = 2**31 - 1
# The smallint position would allow 32,767; no real basket comes near this, and a batch of
# such orders still fits the request size limit.
ORDER_MAX_LINES = 10_000
# Dates outside these are typos or placeholder values (1900-01-01), not shop history.
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2100, 1, 1)  # exclusive

NUL_BYTE = "contains a NUL byte, which no text column can hold"
NOT_IN_URL = "contains '/', so it could not be used in a URL such as /api/v1/customers/{id}/"
NOT_A_TIME_ZONE = "is not an IANA time zone such as Europe/Berlin"
NOT_AN_EMAIL = "is not an e-mail address"
TOO_LARGE = f"is too large: amounts must be below {AMOUNT_LIMIT:,}"
LINE_TOO_LARGE = f"times the quantity makes a line amount of {AMOUNT_LIMIT:,} or more"
OUT_OF_RANGE = f"is outside {EARLIEST:%Y-%m-%d} .. {LATEST - dt.timedelta(days=1):%Y-%m-%d}"
TOO_MANY_LINES = f"an order may have at most {ORDER_MAX_LINES:,} lines"
TOTAL_TOO_LARGE = f"the order total would be {AMOUNT_LIMIT:,} or more"


@dataclass(frozen=True)
class ParseOptions:
    date_format: str | None = None  # strptime format; None accepts ISO 8601


def _text(max_length: int) -> Parser:
    def parse(value: pd.Series, _options: ParseOptions):
        return value, [(value.str.len() > max_length, f"longer than {max_length} characters")]

    parse.openapi = {"type": "string", "maxLength": max_length}
    return parse


def _identifier(max_length: int) -> Parser:
    """An external id: the API addresses customers by it in the URL path."""

    def parse(value: pd.Series, options: ParseOptions):
        value, problems = _text(max_length)(value, options)
        return value, [*problems, (value.str.contains("/", regex=False), NOT_IN_URL)]

    parse.openapi = {"type": "string", "maxLength": max_length, "pattern": "^[^/]*$"}
    return parse


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: pd.Series, _options: ParseOptions):
    return value, [(~value.isin(_time_zones()) & (value != ""), NOT_A_TIME_ZONE)]


# A strict subset of what Django's EmailValidator accepts, checked by Arrow's regex engine
# in one pass; only the addresses it does not vouch for go through the validator itself.
_PLAIN_EMAIL = (
    r"^[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$"
)
_validate_email = EmailValidator()


def _is_email(address: str) -> bool:
    try:
        _validate_email(address)
    except ValidationError:
        return False
    return True


def _email(value: pd.Series, options: ParseOptions):
    value, problems = _text(254)(value, options)
    plain = pc.match_substring_regex(pa.array(value, pa.string()), _PLAIN_EMAIL)
    unsure = ~plain.to_numpy(zero_copy_only=False) & (value != "").to_numpy()
    invalid = np.zeros(len(value), dtype=bool)
    invalid[unsure] = [not _is_email(address) for address in value[unsure]]
    return value, [*problems, (pd.Series(invalid, index=value.index), NOT_AN_EMAIL)]


def _in_range(parsed: pd.Series, earliest, latest) -> pd.Series:
    return parsed.notna() & ((parsed < earliest) | (parsed >= latest))


def _timestamp(value: pd.Series, options: ParseOptions):
    fmt = options.date_format or "ISO8601"
    # Times with an offset are exact; naive ones are in the shop's reporting time zone.
    aware = value.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    parsed = pd.Series(pd.NaT, index=value.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        parsed[aware] = pd.to_datetime(value[aware], format=fmt, errors="coerce", utc=True)
    if (~aware).any():
        naive = pd.to_datetime(value[~aware], format=fmt, errors="coerce")
        parsed[~aware] = naive.dt.tz_localize(
            settings.TIME_ZONE, ambiguous="NaT", nonexistent="NaT"
        ).dt.tz_convert("UTC")
    expected = options.date_format or "an ISO 8601 date or date-time"
    outside = _in_range(parsed, pd.Timestamp(EARLIEST, tz="UTC"), pd.Timestamp(LATEST, tz="UTC"))
    return parsed, [
        (parsed.isna() & (value != ""), f"is not a date in the format {expected}"),
        (outside, OUT_OF_RANGE),
    ]


def _date(value: pd.Series, options: ParseOptions):
    # A calendar date stays the date written: no time zone applies to it.
    parsed = pd.to_datetime(value, format=options.date_format or "ISO8601", errors="coerce")
    expected = options.date_format or "an ISO 8601 date"
    outside = _in_range(parsed, pd.Timestamp(EARLIEST), pd.Timestamp(LATEST))
    return parsed.dt.date, [
        (parsed.isna() & (value != ""), f"is not a date in the format {expected}"),
        (outside, OUT_OF_RANGE),
    ]


def _decimal(minimum: float | None = 0) -> Parser:
    def parse(value: pd.Series, _options: ParseOptions):
        number = pd.to_numeric(value, errors="coerce")
        bad = number.isna() & (value != "")
        reason = "is not a number (use . for decimals)"
        if minimum is not None:
            negative = number < minimum
            if negative.any():
                bad |= negative
                reason = f"is not a number >= {minimum}"
        rounded = number.round(2)
        return rounded, [(bad, reason), (~bad & (rounded.abs() >= AMOUNT_LIMIT), TOO_LARGE)]

    bounds = {"exclusiveMaximum": True, "maximum": AMOUNT_LIMIT}
    if minimum is not None:
        bounds["minimum"] = minimum
    parse.openapi = {
        "anyOf": [
            {"type": "number", **bounds},
            {"type": "string", "pattern": r"^-?\d{1,10}(\.\d+)?$", "example": "12.50"},
        ]
    }
    return parse


def _positive_int(value: pd.Series, _options: ParseOptions):
    number = pd.to_numeric(value, errors="coerce")
    bad = (number.isna() | (number < 1) | (number % 1 != 0)) & (value != "")
    return number, [
        (bad, "is not a whole number >= 1"),
        (~bad & (number > QUANTITY_MAX), f"is larger than {QUANTITY_MAX:,}"),
    ]


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def _boolean(raw: pd.Series, _options: ParseOptions):
    value = raw.str.lower()
    return value.isin(_TRUE), [(~value.isin(_TRUE | _FALSE), "is not yes/no (1/0, true/false)")]


def _choice(choices: list[str]) -> Parser:
    def parse(raw: pd.Series, _options: ParseOptions):
        value = raw.str.lower()
        return value, [
            (~value.isin(choices) & (value != ""), f"is not one of {', '.join(choices)}")
        ]

    parse.openapi = {"type": "string", "enum": choices}
    return parse


def _rating_or_value(raw: pd.Series, options: ParseOptions):
    return _decimal(None)(raw, options)


_rating_or_value.openapi = _decimal(None).openapi


_time_zone.openapi = {"type": "string", "maxLength": 64, "example": "Europe/Berlin"}
_email.openapi = {"type": "string", "format": "email", "maxLength": 254}
_timestamp.openapi = {
    "type": "string",
    "description": "ISO 8601 date-time (with an offset, or in the shop's time zone) or date",
    "example": "2026-11-20T14:03:00Z",
}
_date.openapi = {"type": "string", "format": "date"}
_positive_int.openapi = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": QUANTITY_MAX},
        {"type": "string", "pattern": r"^\d{1,10}$"},
    ]
}
_boolean.openapi = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "string", "enum": sorted(_TRUE | _FALSE)},
        {"type": "integer", "enum": [0, 1]},
    ]
}


@dataclass(frozen=True)
class Field:
    parser: Parser
    required: bool = False
    default: object = None


KINDS: dict[str, dict[str, Field]] = {
    "customers": {
        "external_id": Field(_identifier(64), required=True),
        "name": Field(_text(200), default=""),
        "email": Field(_email, default=""),
        "phone": Field(_text(32), default=""),
        "country": Field(_text(2), default=""),
        "time_zone": Field(_time_zone, default="UTC"),
        "signup_date": Field(_date),
        "email_consent": Field(_boolean, default=False),
        "sms_consent": Field(_boolean, default=False),
        "webhook_consent": Field(_boolean, default=False),
        "marketing_opt_out": Field(_boolean, default=False),
    },
    "products": {
        "sku": Field(_text(64), required=True),
        "name": Field(_text(200), required=True),
        "category": Field(_text(100), default=""),
        "price": Field(_decimal(), required=True),
    },
    "orders": {
        "order_id": Field(_identifier(64), required=True),
        "customer": Field(_identifier(64), required=True),
        "placed_at": Field(_timestamp, required=True),
        "status": Field(_choice(list(Order.Status.values)), default="paid"),
        "currency": Field(_text(3), default="EUR"),
        "sales_channel": Field(_choice(list(Order.SalesChannel.values)), default="web"),
        "sku": Field(_text(64), default=""),
        "quantity": Field(_positive_int, default=1),
        "unit_price": Field(_decimal(), required=True),
    },
    "events": {
        "external_id": Field(_identifier(64)),
        "customer": Field(_identifier(64), required=True),
        "kind": Field(_choice(list(Event.Kind.values)), required=True),
        "occurred_at": Field(_timestamp, required=True),
        "value": Field(_rating_or_value),
        "sku": Field(_text(64), default=""),
    },
    "transactions": {
        "customer": Field(_identifier(64), required=True),
        "placed_at": Field(_timestamp, required=True),
        "amount": Field(_decimal(), required=True),
        "quantity": Field(_positive_int, default=1),
        "sku": Field(_text(64), default=""),
    },
}


def parse_chunk(
    raw: pd.DataFrame, *, kind: str, columns: dict[str, str], options: ParseOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse the fields of one chunk. ``columns`` maps field -> the file's column name.

    Returns the parsed fields (all rows) and the errors: one row per bad cell with the
    chunk position, the file's column name and the reason.
    """
    parsed = pd.DataFrame(index=raw.index)
    problems = []
    for name, spec in KINDS[kind].items():
        column = columns.get(name)
        if column is None:
            parsed[name] = spec.default
            continue
        text = raw[column].fillna("").str.strip()
        empty = text == ""
        nul = text.str.contains("\x00", regex=False)
        value, found = spec.parser(text.where(~nul, ""), options)
        found = [(nul, NUL_BYTE), *[(bad & ~nul, reason) for bad, reason in found]]
        if spec.required:
            if empty.any():
                problems.append(_errors(empty, column, "is required but empty"))
            found = [(bad & ~empty, reason) for bad, reason in found]
        for bad, reason in found:
            if bad.any():
                shown = text[bad].str.slice(0, 40).map(repr)
                problems.append(
                    pd.DataFrame(
                        {
                            "position": np.flatnonzero(bad.to_numpy()),
                            "column": column,
                            "reason": shown + " " + reason,
                        }
                    )
                )
        if spec.default is not None:
            value = value.where(~empty, spec.default)
        parsed[name] = value.where(~empty, None) if spec.default is None else value
    if kind == "orders" and "unit_price" in columns:
        amount = (parsed["quantity"].astype(float) * parsed["unit_price"].astype(float)).round(2)
        if (too_large := amount >= AMOUNT_LIMIT).any():
            problems.append(_errors(too_large, columns["unit_price"], LINE_TOO_LARGE))
    if kind == "events" and columns.get("value") and columns.get("kind"):
        reviews = parsed["kind"] == Event.Kind.REVIEW
        bad = reviews & ~parsed["value"].between(1, 5)
        if bad.any():
            problems.append(_errors(bad, columns["value"], "a review needs a rating from 1 to 5"))
    errors = (
        pd.concat(problems, ignore_index=True)
        if problems
        else pd.DataFrame({"position": [], "column": [], "reason": []})
    )
    return parsed, errors


def _errors(mask: pd.Series, column: str, reason: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"position": np.flatnonzero(mask.to_numpy()), "column": column, "reason": reason}
    )
