"""Workflow endpoints for the shop's systems: coupon redemption at checkout (Admin-role
integration tokens), delivery receipts from channel providers (signed requests), and the
daily capacity of queues and agents, offers' priors and campaigns' exploration share
(Admins)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.permissions import IsAdminRole
from core.roles import ADMIN, AGENT
from core.schema import VALIDATION_ERRORS
from retention.models import CAPACITY_TOO_LOW, Campaign, Offer, OutboxMessage, Queue
from retention.permissions import SignedByProvider
from retention.selectors import campaign_uplift, latest_uplift_model, todays_queue
from retention.services.audit import Actor
from retention.services.cases import capacity_set
from retention.services.coupons import CouponRefused, coupon_redeem
from retention.services.learning import campaign_exploration_set, offer_prior_set
from retention.services.outbox import RECEIPT_STATES, ReceiptRefused, outbox_receipt

_REFUSAL_STATUS = {
    "unknown": status.HTTP_404_NOT_FOUND,
    "used": status.HTTP_409_CONFLICT,
    "order_has_coupon": status.HTTP_409_CONFLICT,
}


@extend_schema_field(
    {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": 9999999999.99, "multipleOf": 0.01},
            {"type": "string", "pattern": r"^\d{1,10}(\.\d{1,2})?$", "example": "49.90"},
        ]
    }
)
class MoneyField(serializers.DecimalField):
    """A non-negative amount of NUMERIC(12, 2), as a JSON number or a decimal string."""


class RedeemInput(serializers.Serializer):
    # min_length and min_value document what DRF enforces anyway (no blanks, no negatives).
    code = serializers.CharField(min_length=1, max_length=24)
    customer = serializers.CharField(
        min_length=1, max_length=64, help_text="The customer's external id"
    )
    order = serializers.CharField(min_length=1, max_length=64, help_text="The order's external id")
    order_total = MoneyField(max_digits=12, decimal_places=2, min_value=0)


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
    same redemption; another order, another customer, another customer's order, an order
    that has a coupon already, an expired coupon or an order below the minimum is refused
    with the reason. Every redemption is audited with the token's user."""

    permission_classes = [IsAdminRole]

    @extend_schema(
        request=RedeemInput,
        responses={
            200: RedeemOutput,
            400: OpenApiResponse(
                {
                    "anyOf": [
                        {"$ref": "#/components/schemas/Refusal"},
                        {"$ref": f"#/components/schemas/{VALIDATION_ERRORS}"},
                    ]
                },
                description="A refusal, or a request that is not a redemption",
            ),
            404: RefusalSerializer,
            409: RefusalSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        given = RedeemInput(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            coupon = coupon_redeem(
                **given.validated_data,
                now=timezone.now(),
                actor=Actor.agent(request.user, via="api"),
            )
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


RECEIPT_SCHEMA = {
    "type": "object",
    "properties": {
        "reference": {"type": "string", "maxLength": 200},
        "status": {"type": "string", "enum": sorted(RECEIPT_STATES)},
        "reason": {"type": "string", "maxLength": 500},
    },
    "required": ["reference", "status"],
}


class ReceiptResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    state = serializers.CharField(required=False, help_text="The message's state now")
    error = serializers.JSONField(required=False, help_text="Why this receipt was not applied")


class ReceiptResultsSerializer(serializers.Serializer):
    results = ReceiptResultSerializer(many=True)


class DeliveryReceipts(APIView):
    """Providers report delivered or failed messages, one receipt or a list; each receipt
    gets its own result, and receipts repeated or out of order are harmless."""

    permission_classes = [SignedByProvider]
    authentication_classes: list = []
    # Providers post receipts in bursts from a few addresses: a rate of their own instead
    # of the anonymous one.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "receipts"

    def initial(self, request: Request, *args, **kwargs) -> None:
        # A method the view lacks is a 405 before the signature is looked at, as for views
        # with users (DRF checks permissions before it looks for the handler).
        if not hasattr(self, request.method.lower()):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={
            "application/json": {
                "anyOf": [RECEIPT_SCHEMA, {"type": "array", "items": RECEIPT_SCHEMA}]
            }
        },
        responses={200: ReceiptResultsSerializer},
        parameters=[
            OpenApiParameter(
                "X-Retention-Timestamp",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Unix time in seconds; at most 300 s from ours",
            ),
            OpenApiParameter(
                "X-Retention-Signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description='"sha256=" + hex HMAC-SHA256 of "{timestamp}." + body with the '
                "shared RECEIPTS_SECRET",
            ),
        ],
    )
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


class CapacityInput(serializers.Serializer):
    daily_capacity = serializers.IntegerField(
        min_value=1,
        max_value=2_147_483_647,
        error_messages={"min_value": CAPACITY_TOO_LOW},
        help_text="Cases the queue or agent works a day; the top ones by priority are to do",
    )


class CapacityOutput(serializers.Serializer):
    name = serializers.CharField(help_text="The queue's name or the agent's username")
    daily_capacity = serializers.IntegerField(source="capacity")
    to_do = serializers.IntegerField(source="to_do_count", help_text="On today's to-do list")
    watching = serializers.IntegerField(source="watching_count", help_text="Waiting for capacity")
    done_today = serializers.IntegerField()


def _set_capacity(request: Request, **which) -> Response:
    given = CapacityInput(data=request.data)
    given.is_valid(raise_exception=True)
    now = timezone.now()
    capacity_set(
        daily_capacity=given.validated_data["daily_capacity"],
        actor=Actor.agent(request.user, via="api"),
        now=now,
        **which,
    )
    return Response(CapacityOutput(todays_queue(day=timezone.localdate(now), **which)).data)


def _not_found(what: str) -> Response:
    return Response({"detail": f"no {what} of that name"}, status=status.HTTP_404_NOT_FOUND)


class QueueCapacityView(APIView):
    """Set how many cases a queue's agents work a day; today's lists are planned again at
    once, so the answer shows what is to do and what is watched now."""

    permission_classes = [IsAdminRole]

    @extend_schema(
        request=CapacityInput,
        responses={200: CapacityOutput},
        parameters=[
            OpenApiParameter("name", {"type": "string", "maxLength": 50}, OpenApiParameter.PATH)
        ],
    )
    def put(self, request: Request, name: str) -> Response:
        # A NUL byte is no name a queue can have, and PostgreSQL refuses to compare one.
        if "\x00" in name or not Queue.objects.filter(name=name).exists():
            return _not_found("queue")
        return _set_capacity(request, queue=name)


class AgentCapacityView(APIView):
    """Set how many of the cases assigned to an agent (Agent or Admin role) they work a
    day; answered like a queue's."""

    permission_classes = [IsAdminRole]

    @extend_schema(
        request=CapacityInput,
        responses={200: CapacityOutput},
        parameters=[
            OpenApiParameter(
                "username", {"type": "string", "maxLength": 150}, OpenApiParameter.PATH
            )
        ],
    )
    def put(self, request: Request, username: str) -> Response:
        staff = get_user_model().objects.filter(
            is_active=True, is_staff=True, groups__name__in=[ADMIN, AGENT]
        )
        agent = None if "\x00" in username else staff.filter(username=username).first()
        if agent is None:
            return _not_found("agent")
        return _set_capacity(request, agent=agent)


class ByNumber:
    """Detail views whose id is in the path as text: an id that is not a number is a JSON
    404 like any unknown id (an ``<int:>`` route would answer with Django's HTML page)."""

    def get_object(self):
        pk = self.kwargs["pk"]
        if not (pk.isascii() and pk.isdigit() and len(pk) < 19):
            raise exceptions.NotFound()
        return super().get_object()


class OfferPriorSerializer(serializers.ModelSerializer):
    """An offer's prior (what the admin expects) and what has been learned since."""

    learned = serializers.SerializerMethodField(
        help_text="The latest learned effect against the control arm, overall and per risk "
        "tier, with 95% intervals; null before anything was learned"
    )

    class Meta:
        model = Offer
        fields = ["id", "name", "offer_type", "value", "expected_response", "prior_strength"]
        fields += ["learned"]
        read_only_fields = ["id", "name", "offer_type", "value"]

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": {}})
    def get_learned(self, offer: Offer) -> dict | None:
        model = latest_uplift_model(as_of=timezone.localdate())
        return model.effects.get(str(offer.pk)) if model else None


class OfferPrior(ByNumber, generics.RetrieveUpdateAPIView):
    """Read an offer's prior and learned response, or change the prior (``expected_response``
    strictly between 0 and 1) and its strength (customers' worth of evidence, at least 1)."""

    permission_classes = [IsAdminRole]
    serializer_class = OfferPriorSerializer
    queryset = Offer.objects.all()
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer) -> None:
        serializer.instance = offer_prior_set(
            offer=serializer.instance, **serializer.validated_data
        )


class CampaignLearningSerializer(serializers.ModelSerializer):
    """A campaign's exploration share and how its targeting and effect are doing."""

    uplift = serializers.SerializerMethodField(
        help_text="From customers whose window has closed: keep / stop / not yet with its "
        "always-valid interval, and AUUC with its bootstrap 95% interval and the uplift at "
        "the top 10/20/30% (null before any customer had a predicted uplift)"
    )

    class Meta:
        model = Campaign
        fields = ["id", "name", "status", "control_share", "exploration_share", "uplift"]
        read_only_fields = ["id", "name", "status", "control_share"]

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_uplift(self, campaign: Campaign) -> dict:
        report = campaign_uplift(campaign, as_of=timezone.localdate())
        s = report.sequential
        answer = {
            "finished": report.finished,
            "decision": s.decision,
            "verdict": s.verdict,
            "difference": s.difference,
            "low": s.low,
            "high": s.high,
            "qini": None,
        }
        if report.qini is not None:
            q = report.qini
            answer["qini"] = {
                "auuc": q.auuc,
                "auuc_low": q.auuc_low,
                "auuc_high": q.auuc_high,
                "top": {
                    f"{share:.0%}": {"uplift": u.difference, "low": u.ci_low, "high": u.ci_high}
                    for share, u in q.top.items()
                },
            }
        return answer


class CampaignLearning(ByNumber, generics.RetrieveUpdateAPIView):
    """Read a campaign's exploration share and uplift report, or change the share (0 to 0.5)."""

    permission_classes = [IsAdminRole]
    serializer_class = CampaignLearningSerializer
    queryset = Campaign.objects.all()
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer) -> None:
        serializer.instance = campaign_exploration_set(
            campaign=serializer.instance, **serializer.validated_data
        )
