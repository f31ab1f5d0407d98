"""The shop-data API: bulk upserts for Admins, reads for Admins and Agents."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.filters import CustomerFilter, OrderFilter
from customers.privacy import customer_erase, customer_export
from customers.selectors import (
    CustomerNotFound,
    customer_by_external_id,
    customer_list,
    customers_with_totals,
    orders_with_lines,
)
from customers.serializers import (
    BatchResultSerializer,
    CustomerDetailSerializer,
    CustomerSerializer,
    OrderSerializer,
)
from customers.services import upsert_batch
from retention.paginators import NewestFirstCursor
from retention.permissions import IsAdminRole, IsStaffRole


class BulkUpsertView(APIView):
    """POST a JSON list of up to 10,000 records (or {"records": [...]}); idempotent by
    external id. Bad records come back as errors with index, field and message while
    the good ones are stored; ``?atomic=true`` stores nothing if any record is bad."""

    permission_classes = [IsAdminRole]
    kind = ""

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: BatchResultSerializer, 400: BatchResultSerializer},
        parameters=[OpenApiParameter("atomic", bool, description="all or nothing")],
    )
    def post(self, request: Request) -> Response:
        records = request.data
        if isinstance(records, dict) and "records" in records:
            records = records["records"]
        atomic = request.query_params.get("atomic", "").lower() in {"1", "true", "yes"}
        try:
            result = upsert_batch(kind=self.kind, records=records, atomic=atomic)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_200_OK if result.stored else status.HTTP_400_BAD_REQUEST
        return Response(result.as_dict(), status=code)


class CustomerList(generics.ListAPIView):
    permission_classes = [IsStaffRole]
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    pagination_class = NewestFirstCursor

    def get_queryset(self):
        return customer_list()


class CustomerDetail(generics.RetrieveAPIView):
    permission_classes = [IsStaffRole]
    serializer_class = CustomerDetailSerializer
    lookup_field = "external_id"

    def get_queryset(self):
        return customers_with_totals()


class OrderList(generics.ListAPIView):
    permission_classes = [IsStaffRole]
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    pagination_class = NewestFirstCursor

    def get_queryset(self):
        orders = orders_with_lines()
        if "external_id" in self.kwargs:
            orders = orders.filter(customer__external_id=self.kwargs["external_id"])
        return orders


class CustomerExportView(APIView):
    """Everything held about one customer, as one JSON document (GDPR art. 15)."""

    permission_classes = [IsAdminRole]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def get(self, request: Request, external_id: str) -> Response:
        try:
            customer = customer_by_external_id(external_id)
        except CustomerNotFound as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        return Response(customer_export(customer=customer, now=timezone.now()))


class CustomerEraseView(APIView):
    """Erase one customer's personal data everywhere (GDPR art. 17); safe to repeat.
    Answers what was changed, per app."""

    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    def post(self, request: Request, external_id: str) -> Response:
        try:
            customer = customer_by_external_id(external_id)
        except CustomerNotFound as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        counts = customer_erase(
            customer=customer, actor=request.user, via="api", now=timezone.now()
        )
        return Response({"external_id": customer.external_id, "erased": counts})
