from __future__ import annotations

import datetime as dt

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField

from customers.models import Customer, Order


class CustomerFilter(django_filters.FilterSet):
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
OUT_OF_RANGE = "This date-time is outside the range that can be stored."


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
        except OverflowError:
            raise ValidationError(OUT_OF_RANGE, code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class OrderFilter(django_filters.FilterSet):
    placed_after = UtcDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = UtcDateTimeFilter(field_name="placed_at", lookup_expr="lt")
    customer = django_filters.CharFilter(field_name="customer__external_id")

    class Meta:
        model = Order
        fields = ["status", "sales_channel", "currency"]
