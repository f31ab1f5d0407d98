"""The retention workflow's data: rules and the alerts they raise, campaigns and their offers,
interventions with their audit trail, coupons, the contact policy, the outbox and outcomes.

States are plain columns changed only by ``retention.services``; every change of an
intervention or alert writes an ``AuditEntry``, so "who did what, when" is always a query.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from customers.models import Channel, Customer, OfferType, Order
from ml.models import RiskTier
from retention.offers import ValueRange, value_range
from retention.rules import field_choices


class JobLock(models.Model):
    """A named lease held by one running job.

    A database row rather than a Redis key so the same lock works on the embedded default
    (SQLite, filesystem broker) and in production; the lease expires so a killed worker
    cannot block a job forever.
    """

    name = models.CharField(max_length=100, primary_key=True)
    token = models.CharField(max_length=32)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


SHARED_QUEUE = "shared"


class RiskRule(models.Model):
    """Conditions over a scoring run's features and scores; every customer matching all of
    them gets an alert (and, through a campaign targeting the rule, a proposed offer)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, help_text="What the rule means, for agents")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="Higher first: agents see the alerts of higher rules on top"
    )
    cooldown_days = models.PositiveSmallIntegerField(
        default=14,
        help_text="After an alert of this rule is closed, no new one for the same customer "
        "for this many days",
    )
    escalate_after_hours = models.PositiveSmallIntegerField(
        default=24, help_text="High-severity alerts not acknowledged within this escalate"
    )
    queue = models.CharField(
        max_length=50, default=SHARED_QUEUE, help_text="Queue of agents that sees the alerts"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Assign every alert to this agent; empty leaves them in the queue",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name


class RuleCondition(models.Model):
    """``field operator value``, where the value is a constant, the shop's average of the
    field in the same run, or another field of the same customer."""

    class Operator(models.TextChoices):
        LT = "<", "less than"
        LTE = "<=", "at most"
        GT = ">", "more than"
        GTE = ">=", "at least"
        EQ = "=", "equal to"
        NE = "!=", "not equal to"

    class CompareTo(models.TextChoices):
        VALUE = "value", "a value"
        SHOP_AVERAGE = "shop_average", "the shop average"
        FIELD = "field", "another field"

    rule = models.ForeignKey(RiskRule, on_delete=models.CASCADE, related_name="conditions")
    field = models.CharField(max_length=40, choices=field_choices)
    operator = models.CharField(max_length=2, choices=Operator.choices)
    compare_to = models.CharField(max_length=16, choices=CompareTo.choices, default=CompareTo.VALUE)
    value = models.CharField(
        max_length=40, blank=True, help_text="A number, or for tier: high, medium or low"
    )
    other_field = models.CharField(max_length=40, choices=field_choices, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        right = {
            self.CompareTo.VALUE: self.value,
            self.CompareTo.SHOP_AVERAGE: "shop average",
            self.CompareTo.FIELD: self.other_field,
        }[self.CompareTo(self.compare_to)]
        return f"{self.field} {self.operator} {right}"

    def clean(self) -> None:
        from retention.rules import InvalidCondition, condition_of

        try:
            condition_of(self)
        except InvalidCondition as exc:
            raise ValidationError({exc.field: exc.message}) from exc


class Alert(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        ACTIONED = "actioned", "Actioned"
        DISMISSED = "dismissed", "Dismissed"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        WON_BACK = "won_back", "Won back (ordered again)"
        HANDLED = "handled", "Handled by an agent"

    OPEN_STATES = (State.OPEN, State.ACKNOWLEDGED, State.ACTIONED)

    # Foreign keys without an index of their own are served by a composite or partial
    # index in Meta: alerts are written a million at a time, and each index costs that.
    # (Deleting a rule scans for its closed alerts; that is a rare admin act.)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    rule = models.ForeignKey(
        RiskRule, on_delete=models.PROTECT, related_name="alerts", db_index=False
    )
    severity = models.CharField(max_length=8, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    queue = models.CharField(max_length=50, default=SHARED_QUEUE)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        db_index=False,
    )
    as_of = models.DateField(help_text="The scoring day that raised it")
    raised_at = models.DateTimeField()
    probability = models.FloatField()
    tier = models.CharField(max_length=8, choices=RiskTier.choices)
    value_at_risk = models.FloatField()
    reasons = models.JSONField(default=list)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    note = models.TextField(blank=True, help_text="Why it was dismissed, or what was done")
    won_back_order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            # Re-running a night's rules must not raise the same alert twice.
            # Rule first: it also finds a rule's open alerts (a campaign's targets).
            models.UniqueConstraint(
                fields=["rule", "customer"],
                condition=Q(state__in=["open", "acknowledged", "actioned"]),
                name="one_open_alert_per_rule",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "queue", "-raised_at"], name="alert_queue"),
            models.Index(
                fields=["assigned_to", "state"],
                condition=Q(assigned_to__isnull=False),
                name="alert_assignee",
            ),
            models.Index(fields=["customer", "rule", "-closed_at"], name="alert_cooldown"),
            # The console's Today queue: open alerts without an offer, by value at risk.
            models.Index(
                fields=["-value_at_risk"],
                condition=Q(state__in=["open", "acknowledged"]),
                name="alert_open_value",
            ),
            models.Index(
                fields=["won_back_order"],
                condition=Q(won_back_order__isnull=False),
                name="alert_won_back_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} · customer {self.customer_id} ({self.state})"


class Offer(models.Model):
    """An offer a campaign may choose for a customer, with what it costs and how often it is
    expected to change a leaving customer's mind (a prior the admin sets from experience)."""

    offer_type = models.CharField(max_length=32, choices=OfferType.choices)
    name = models.CharField(max_length=100)
    value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=0,
        help_text="Percent off, amount off or loyalty points; 0 for free shipping and "
        "recommendations",
    )
    unit_cost = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=0,
        help_text="What the shop pays per use: shipping cost, or the cost of one loyalty point",
    )
    min_order_value = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    valid_days = models.PositiveSmallIntegerField(default=30)
    expected_response = models.FloatField(
        default=0.05,
        help_text="Share of customers about to leave whom the offer keeps (0-1)",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["offer_type", "value"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expected_response__gte=0, expected_response__lte=1),
                name="offer_response_is_a_share",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="offer_value_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def needs_coupon(self) -> bool:
        return self.offer_type != OfferType.PRODUCT_RECOMMENDATION


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        FINISHED = "finished", "Finished"

    class Approval(models.TextChoices):
        AGENT = "agent", "An agent approves each offer"
        AUTOMATIC = "automatic", "Send automatically"

    name = models.CharField(max_length=100, unique=True)
    goal = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    approval_mode = models.CharField(
        max_length=16, choices=Approval.choices, default=Approval.AGENT
    )
    target_rule = models.ForeignKey(
        RiskRule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        help_text="Customers with an open alert of this rule are targeted",
    )
    target_tier = models.CharField(
        max_length=8,
        choices=RiskTier.choices,
        blank=True,
        help_text="Or: every customer scored in this tier",
    )
    offers = models.ManyToManyField(Offer, related_name="campaigns")
    channels = models.JSONField(
        default=list, help_text='Channels in order of preference, e.g. ["email", "sms"]'
    )
    control_share = models.FloatField(
        default=0.1, help_text="Share of targeted customers held out to measure the effect"
    )
    max_offers = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no cap")
    max_discount_total = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Empty: no cap"
    )
    max_percent_off = models.DecimalField(max_digits=5, decimal_places=2, default=20)
    max_fixed_amount = models.DecimalField(max_digits=10, decimal_places=2, default=20)
    max_loyalty_points = models.PositiveIntegerField(
        default=1000, help_text="The most bonus loyalty points one offer may give"
    )
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    window_days = models.PositiveSmallIntegerField(
        default=30,
        help_text="An order within this many days of the offer counts as retained / converted",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(control_share__gt=0, control_share__lt=1),
                name="campaign_has_both_arms",
            ),
            models.CheckConstraint(
                condition=Q(target_rule__isnull=False) | ~Q(target_tier=""),
                name="campaign_has_a_target",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def value_range(self, offer_type: str) -> ValueRange | None:
        """What an offer of ``offer_type`` may be worth in this campaign (None: no value)."""
        return value_range(
            offer_type,
            max_percent_off=self.max_percent_off,
            max_fixed_amount=self.max_fixed_amount,
            max_loyalty_points=self.max_loyalty_points,
        )

    def clean(self) -> None:
        unknown = sorted(set(self.channels or []) - set(Channel.values))
        if unknown or not self.channels:
            raise ValidationError(
                {"channels": f"choose from {', '.join(Channel.values)}; got {unknown or 'none'}"}
            )
        if self.target_rule_id is None and not self.target_tier:
            raise ValidationError("choose a target rule or a target tier")


class Intervention(models.Model):
    """One customer in one campaign: the offer proposed to them (or, in the control arm, the
    offer they would have got) and everything that happened to it since."""

    class Arm(models.TextChoices):
        TREATMENT = "treatment", "Treatment"
        CONTROL = "control", "Control (receives nothing)"

    class State(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        EDITED = "edited", "Approved with edits"
        DISMISSED = "dismissed", "Dismissed"
        HELD_OUT = "held_out", "Held out (control)"
        BLOCKED = "blocked", "Blocked by contact policy"
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        CONVERTED = "converted", "Converted"
        EXPIRED = "expired", "Expired"

    # As on Alert: foreign keys without an index of their own are served by one in Meta.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="interventions", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="interventions", db_index=False
    )
    alert = models.ForeignKey(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="interventions"
    )
    arm = models.CharField(max_length=16, choices=Arm.choices)
    state = models.CharField(max_length=16, choices=State.choices)
    # No index: only deleting an offer looks interventions up by it (a rare admin act, a
    # scan), while every night's proposals would pay for one.
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="+", db_index=False)
    offer_type = models.CharField(max_length=32, choices=OfferType.choices)
    offer_value = models.DecimalField(max_digits=10, decimal_places=2)
    recommended_skus = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    probability = models.FloatField()
    value_at_risk = models.FloatField()
    expected_net_value = models.FloatField()
    expected_cost = models.FloatField()
    as_of = models.DateField(help_text="The scoring day that proposed it")
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    block_reason = models.CharField(max_length=200, blank=True)
    dismiss_reason = models.CharField(max_length=200, blank=True)
    converted_order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="one_offer_per_campaign")
        ]
        indexes = [
            models.Index(fields=["state", "campaign"], name="intervention_state"),
            models.Index(fields=["customer", "-proposed_at"], name="intervention_customer"),
            # The console's Today queue: offers awaiting approval, best expected value first.
            models.Index(
                fields=["-expected_net_value"],
                condition=Q(state="proposed"),
                name="intervention_proposed_value",
            ),
            models.Index(
                fields=["decided_by"],
                condition=Q(decided_by__isnull=False),
                name="intervention_decided_by",
            ),
            models.Index(
                fields=["converted_order"],
                condition=Q(converted_order__isnull=False),
                name="intervention_converted_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} · customer {self.customer_id} ({self.state})"


class AuditEntry(models.Model):
    """Append-only: one row per change of an alert or intervention, with who caused it."""

    class Actor(models.TextChoices):
        AGENT = "agent", "Agent"
        RULE = "rule", "Rule"
        SCHEDULE = "schedule", "Scheduled run"
        PROVIDER = "provider", "Provider receipt"
        CUSTOMER = "customer", "Customer"

    at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=Actor.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # rules and scheduled runs have no user: see the partial index
    )
    via = models.CharField(max_length=16, blank=True, help_text="admin, console, bot, api, task")
    chat_id = models.CharField(max_length=64, blank=True)
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="audit"
    )
    intervention = models.ForeignKey(
        Intervention, on_delete=models.CASCADE, null=True, blank=True, related_name="audit"
    )
    action = models.CharField(max_length=32)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at"], name="audit_time"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.from_state}→{self.to_state}"


def _coupon_code() -> str:
    return secrets.token_hex(8).upper()


class Coupon(models.Model):
    """A single-use code bound to one customer. Codes are 16 hex digits from the system's
    secure random source, 64 random bits (a UUID's hex would carry a fixed version digit),
    so they cannot be guessed from one another."""

    code = models.CharField(max_length=24, unique=True, default=_coupon_code)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="coupons")
    intervention = models.OneToOneField(
        Intervention, on_delete=models.SET_NULL, null=True, blank=True, related_name="coupon"
    )
    offer_type = models.CharField(max_length=32, choices=OfferType.choices)
    value = models.DecimalField(max_digits=10, decimal_places=2)
    min_order_value = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    order_reference = models.CharField(
        max_length=64, blank=True, help_text="The shop's order id given at redemption"
    )
    order = models.OneToOneField(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="coupon"
    )
    discount = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, help_text="Discount granted on redemption"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.code


class ContactPolicy(models.Model):
    """The one place that says when a customer may be contacted (a single row)."""

    max_per_7_days = models.PositiveSmallIntegerField(default=1)
    max_per_30_days = models.PositiveSmallIntegerField(default=3)
    quiet_start_hour = models.PositiveSmallIntegerField(
        default=21, help_text="Quiet hours start (customer's local time, 0-23)"
    )
    quiet_end_hour = models.PositiveSmallIntegerField(
        default=8, help_text="Quiet hours end (customer's local time, 0-23)"
    )
    block_while_ticket_open = models.BooleanField(default=True)
    ticket_open_days = models.PositiveSmallIntegerField(
        default=7,
        help_text="A support ticket counts as open this long unless the shop sends "
        '{"status": "closed"} for it',
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "contact policy"
        constraints = [
            models.CheckConstraint(
                condition=Q(quiet_start_hour__lt=24, quiet_end_hour__lt=24), name="quiet_hours"
            )
        ]

    def __str__(self) -> str:
        return "Contact policy"

    @classmethod
    def current(cls) -> ContactPolicy:
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


class MessageTemplate(models.Model):
    """What a customer reads, per channel and offer type (Django template syntax)."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    offer_type = models.CharField(
        max_length=32, choices=OfferType.choices, blank=True, help_text="Empty: any offer"
    )
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()

    class Meta:
        ordering = ["channel", "offer_type"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "offer_type"], name="one_template_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} · {self.get_offer_type_display() or 'any offer'}"

    def clean(self) -> None:
        from django.template import Template, TemplateSyntaxError

        for name in ("subject", "body"):
            try:
                Template(getattr(self, name))
            except TemplateSyntaxError as exc:
                raise ValidationError({name: f"template error: {exc}"}) from exc


class OutboxMessage(models.Model):
    """A message to send, written in the same transaction as the intervention that wants it.

    ``idempotency_key`` goes to the provider with every attempt, so a repeated attempt is
    recognised there too; ``state`` moves pending → sending → sent → delivered, or failed.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    intervention = models.ForeignKey(
        Intervention, on_delete=models.CASCADE, related_name="messages"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The fencing token of the claim that owns the row while it is ``sending``: every write
    # of an outcome checks it, so a worker whose lease was taken over changes nothing.
    claim_token = models.CharField(max_length=32, blank=True)
    # Set just before the message is handed to its channel: a row still ``sending`` with
    # this set was in flight when its worker stopped; without it, it was never attempted.
    send_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["provider_message_id"], name="outbox_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient} ({self.state})"


class CampaignOutcome(models.Model):
    """What a campaign changed, measured on one day: both arms and the uplift with its
    95% interval."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="outcomes")
    as_of = models.DateField()
    arms = models.JSONField(help_text="Per arm: customers, retained, revenue, discount cost")
    uplift = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    net_incremental_revenue = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=200)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "as_of"], name="one_outcome_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} on {self.as_of}: {self.verdict}"
