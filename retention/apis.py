"""Workflow endpoints for the shop's systems: coupon redemption at checkout (Admin-role
integration tokens) and delivery receipts from channel providers (signed requests)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from retention.models import OutboxMessage
from retention.permissions import IsAdminRole, SignedByProvider
from retention.services.coupons import CouponRefused, coupon_redeem
from retention.services.outbox import RECEIPT_STATES, ReceiptRefused, outbox_receipt

_REFUSAL_STATUS = {"unknown": status.HTTP_404_NOT_FOUND, "used": status.HTTP_409_CONFLICT}


class RedeemInput(serializers.Serializer):
    code = serializers.CharField(max_length=24)
    customer = serializers.CharField(max_length=64, help_text="The customer's external id")
    order = serializers.CharField(max_length=64, help_text="The order's external id")
    order_total = serializers.DecimalField(max_digits=12, decimal_places=2)


class RedeemOutput(serializers.Serializer):
    code = serializers.CharField()
    offer_type = serializers.CharField()
    value = serializers.DecimalField(max_digits=10, decimal_places=2)
    discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    order = serializers.CharField(source="order_reference")
    redeemed_at = serializers.DateTimeField()


class RefusalSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()


class CouponRedeem(APIView):
    """Redeem a coupon for an order. Idempotent: the same code and order again returns the
    same redemption; another order, another customer, an expired coupon or an order below
    the minimum is refused with the reason."""

    permission_classes = [IsAdminRole]

    @extend_schema(
        request=RedeemInput,
        responses={
            200: RedeemOutput,
            400: RefusalSerializer,
            404: RefusalSerializer,
            409: RefusalSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        given = RedeemInput(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            coupon = coupon_redeem(**given.validated_data, now=timezone.now())
        except CouponRefused as refused:
            return Response(
                {"error": refused.code, "detail": refused.message},
                status=_REFUSAL_STATUS.get(refused.code, status.HTTP_400_BAD_REQUEST),
            )
        return Response(RedeemOutput(coupon).data)


class ReceiptInput(serializers.Serializer):
    reference = serializers.CharField(
        max_length=200, help_text="Our idempotency key, or the provider's message id"
    )
    status = serializers.ChoiceField(choices=sorted(RECEIPT_STATES))
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class DeliveryReceipts(APIView):
    """Providers report delivered or failed messages, one receipt or a list; each receipt
    gets its own result, and receipts repeated or out of order are harmless."""

    permission_classes = [SignedByProvider]
    authentication_classes: list = []

    @extend_schema(request=ReceiptInput(many=True), responses={200: None})
    def post(self, request: Request) -> Response:
        items = request.data if isinstance(request.data, list) else [request.data]
        results = []
        for index, item in enumerate(items):
            given = ReceiptInput(data=item)
            if not given.is_valid():
                results.append({"index": index, "error": given.errors})
                continue
            try:
                message = outbox_receipt(**given.validated_data, now=timezone.now())
            except (OutboxMessage.DoesNotExist, ReceiptRefused) as exc:
                results.append({"index": index, "error": str(exc)})
                continue
            results.append({"index": index, "state": message.state})
        return Response({"results": results})
