"""Shop-data API routes (under /api/v1/). Permissions are stated on each view."""

from django.urls import path

from customers.apis import (
    BULK_VIEWS,
    CustomerDetail,
    CustomerEraseView,
    CustomerExportView,
    CustomerList,
    OrderList,
)

urlpatterns = [
    *[
        path(f"{kind}/bulk", view.as_view(), name=f"{kind}-bulk")
        for kind, view in BULK_VIEWS.items()
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
