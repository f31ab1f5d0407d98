from __future__ import annotations

import django_filters
from django.db.models import Q

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


class OrderFilter(django_filters.FilterSet):
    placed_after = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="lt")
    customer = django_filters.CharFilter(field_name="customer__external_id")

    class Meta:
        model = Order
        fields = ["status", "sales_channel", "currency"]
