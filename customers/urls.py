"""Shop-data API routes (under /api/v1/). Permissions are stated on each view."""

from django.urls import path

from customers.apis import (
    BulkUpsertView,
    CustomerDetail,
    CustomerEraseView,
    CustomerExportView,
    CustomerList,
    OrderList,
)

urlpatterns = [
    *[
        path(f"{kind}/bulk", BulkUpsertView.as_view(kind=kind), name=f"{kind}-bulk")
        for kind in ("customers", "products", "orders", "events")
    ],
    path("customers/", CustomerList.as_view(), name="customer-list"),
    path("customers/<str:external_id>/", CustomerDetail.as_view(), name="customer-detail"),
    path("customers/<str:external_id>/orders/", OrderList.as_view(), name="customer-orders"),
    path("orders/", OrderList.as_view(), name="order-list"),
    path(
        "customers/<str:external_id>/export/",
        CustomerExportView.as_view(),
        name="customer-export",
    ),
    path("customers/<str:external_id>/erase/", CustomerEraseView.as_view(), name="customer-erase"),
]
