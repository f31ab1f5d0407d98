"""Reads of shop data for the API and console."""

from __future__ import annotations

from django.db.models import Count, Max, Prefetch, Q, QuerySet, Sum

from customers.models import Customer, Order, OrderLine, Product


def shop_has_data() -> bool:
    return Customer.objects.exists() or Product.objects.exists()


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.all()


def customers_with_totals() -> QuerySet[Customer]:
    paid = Q(orders__status=Order.Status.PAID)
    return Customer.objects.annotate(
        order_count=Count("orders", filter=paid),
        total_spent=Sum("orders__total", filter=paid),
        last_order_at=Max("orders__placed_at", filter=paid),
    )


def orders_with_lines() -> QuerySet[Order]:
    return Order.objects.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("position"))
    )
