"""The shop-data API: bulk upserts for Admins, reads for Admins and Agents."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.paginators import NewestFirstCursor
from core.permissions import IsAdminRole, IsStaffRole
from core.schema import DETAIL
from customers.filters import CustomerFilter, OrderFilter
from customers.importing.fields import KINDS, ORDER_MAX_LINES
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
from customers.services import KEYS, LINE_FIELDS, ORDER_FIELDS, upsert_batch


def record_schema(kind: str) -> dict:
    """The JSON schema of one record of ``kind``, built from the loader's field specs so the
    documentation states the limits the validation applies. Values may be null (the
    field's default), and unknown or bad fields are reported per record rather than
    failing the request."""
    fields = KINDS[kind]
    names = (
        {api: fields[name] for api, name in ORDER_FIELDS.items()} if kind == "orders" else fields
    )
    properties = {
        name: {**spec.parser.openapi, "nullable": True}
        if not spec.required
        else spec.parser.openapi
        for name, spec in names.items()
    }
    if kind == "orders":
        line = {name: {**fields[name].parser.openapi, "nullable": True} for name in LINE_FIELDS}
        line["unit_price"] = fields["unit_price"].parser.openapi
        properties["lines"] = {
            "type": "array",
            "minItems": 1,
            "maxItems": ORDER_MAX_LINES,
            "items": {"type": "object", "properties": line, "required": ["unit_price"]},
        }
    required = [name for name, spec in names.items() if spec.required]
    return {
        "type": "object",
        "properties": properties,
        "required": [*required, "lines"] if kind == "orders" else required,
    }


def _batch_schema(kind: str) -> dict:
    records = {"type": "array", "maxItems": settings.API_MAX_BATCH, "items": record_schema(kind)}
    return {
        "anyOf": [
            records,
            {"type": "object", "properties": {"records": records}, "required": ["records"]},
        ]
    }


class BulkUpsertView(APIView):
    """POST a JSON list of up to 10,000 records (or {"records": [...]}); idempotent by
    external id. Bad records come back as errors with index, field and message while
    the good ones are stored; ``?atomic=true`` stores nothing if any record is bad."""

    permission_classes = [IsAdminRole]
    kind = ""

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


def _documented(kind: str):
    return extend_schema(
        request={"application/json": _batch_schema(kind)},
        responses={
            200: BatchResultSerializer,
            400: OpenApiResponse(
                {
                    "anyOf": [
                        {"$ref": "#/components/schemas/BatchResult"},
                        {"$ref": f"#/components/schemas/{DETAIL}"},
                    ]
                },
                description="With ?atomic=true, any bad record (nothing was stored); or a "
                "body that is not a batch of records",
            ),
        },
        parameters=[OpenApiParameter("atomic", bool, description="all or nothing")],
    )


BULK_VIEWS = {
    kind: _documented(kind)(type(f"{kind.title()}BulkUpsert", (BulkUpsertView,), {"kind": kind}))
    for kind in KEYS
}


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
