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


CUSTOMER_NOT_FOUND = "no customer with external id {external_id!r}"


class CustomerNotFound(LookupError):
    def __init__(self, external_id: str) -> None:
        super().__init__(CUSTOMER_NOT_FOUND.format(external_id=external_id))


def customer_by_external_id(external_id: str) -> Customer:
    """The customer a privacy request names, or ``CustomerNotFound`` saying which id."""
    try:
        return Customer.objects.get(external_id=external_id)
    except Customer.DoesNotExist:
        raise CustomerNotFound(external_id) from None


def erased_customer_ids() -> list[int]:
    """Customers whose personal data was erased: scoring leaves them out."""
    return list(Customer.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
