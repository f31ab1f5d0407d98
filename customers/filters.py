from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from customers.models import Customer, Order

NOT_A_BOOLEAN = "Give true or false."
EMPTY = "Give a value or leave the parameter out."


class StrictBooleanField(forms.Field):
    """true or false, as documented; anything else is a 400 instead of no filter at all."""

    def to_python(self, value):
        if value is None:
            return None
        if str(value).lower() not in {"true", "false"}:
            raise ValidationError(NOT_A_BOOLEAN, code="invalid")
        return str(value).lower() == "true"

    def validate(self, value) -> None:
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class StrictFilterSet(django_filters.FilterSet):
    """Refuses parameters given empty, except free text: an empty date, flag or choice is
    a mistake in the caller, not a request for no filter."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, declared in self.filters.items():
            if not isinstance(declared, django_filters.CharFilter) and self.data.get(name) == "":
                self.form.add_error(name, EMPTY)
        return valid and not self.form.errors


class CustomerFilter(StrictFilterSet):
    email_consent = StrictBooleanFilter()
    sms_consent = StrictBooleanFilter()
    webhook_consent = StrictBooleanFilter()
    marketing_opt_out = StrictBooleanFilter()
    signup_after = django_filters.DateFilter(field_name="signup_date", lookup_expr="gte")
    signup_before = django_filters.DateFilter(field_name="signup_date", lookup_expr="lte")
    q = django_filters.CharFilter(method="search", label="external id, email or name")

    class Meta:
        model = Customer
        fields = [
            "external_id",
            "email",
            "country",
            "email_consent",
            "sms_consent",
            "webhook_consent",
            "marketing_opt_out",
        ]

    def search(self, queryset, name, value):
        # Prefix matches keep the indexes on external_id and email usable.
        return queryset.filter(
            Q(external_id=value) | Q(email__istartswith=value) | Q(name__icontains=value)
        )


# Real time zones span UTC-12:00 .. UTC+14:00; PostgreSQL refuses offsets from 16 hours on.
MAX_UTC_OFFSET = dt.timedelta(hours=14)
OFFSET_OUT_OF_RANGE = "The UTC offset must be between -14:00 and +14:00."


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time with a real-world UTC offset, handed on in UTC, so every
    database compares the same instant."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise ValidationError(OFFSET_OUT_OF_RANGE, code="invalid")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:  # beyond year 1 or 9999 in UTC: any stored time is inside
            edge = dt.datetime.min if parsed.year == 1 else dt.datetime.max
            return edge.replace(tzinfo=dt.UTC)


@extend_schema_field(
    {
        "type": "string",
        "format": "date-time",
        "pattern": r"(?:[Zz]|[+-](?:0\d|1[0-3]):[0-5]\d|[+-]14:00)$",
        "description": "ISO 8601 date-time with a UTC offset from -14:00 to +14:00",
    }
)
class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class OrderFilter(StrictFilterSet):
    placed_after = UtcDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = UtcDateTimeFilter(field_name="placed_at", lookup_expr="lt")
    customer = django_filters.CharFilter(field_name="customer__external_id")

    class Meta:
        model = Order
        fields = ["status", "sales_channel", "currency"]
