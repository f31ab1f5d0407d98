"""The retention workflow's data: rules and the cases they open, queues and their capacity,
campaigns and their offers, interventions with their audit trail, coupons, the contact
policy, the outbox and outcomes.

States are plain columns changed only by ``retention.services``; every change of an
intervention or case writes an ``AuditEntry``, so "who did what, when" is always a query.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from customers.models import Channel, Customer, OfferType, Order
from ml.models import RiskTier, Stage
from retention.offers import ValueRange, value_range
from retention.rules import field_choices


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


SHARED_QUEUE = "shared"
DEFAULT_DAILY_CAPACITY = 100
CAPACITY_TOO_LOW = "must be at least 1: a list nobody may work today would never be worked"
INCLUDE_LOST_HELP = "Lost customers go to the automatic win-back, not to agents; tick to {what} too"


class Queue(models.Model):
    """A queue of agents, by the name rules route cases to, with how many cases its agents
    work a day: the top cases by priority within it are "to do today", the rest watched."""

    name = models.CharField(max_length=50, unique=True)
    daily_capacity = models.PositiveIntegerField(
        default=DEFAULT_DAILY_CAPACITY,
        validators=[MinValueValidator(1, CAPACITY_TOO_LOW)],
        help_text="Cases the queue's agents work a day; only this many are pushed to chat",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_capacity__gte=1), name="queue_capacity_positive"
            )
        ]

    def __str__(self) -> str:
        return self.name


class AgentCapacity(models.Model):
    """How many of the cases assigned to one agent they work a day (agents without a row
    get the default)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="case_capacity"
    )
    daily_capacity = models.PositiveIntegerField(
        default=DEFAULT_DAILY_CAPACITY,
        validators=[MinValueValidator(1, CAPACITY_TOO_LOW)],
        help_text="Cases assigned to the agent that they work a day",
    )

    class Meta:
        verbose_name = "agent capacity"
        verbose_name_plural = "agent capacities"
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_capacity__gte=1), name="agent_capacity_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.daily_capacity} a day)"


PRIOR_OUTSIDE = "the prior response must be a number strictly between 0 and 1"
PRIOR_STRENGTH = "the prior strength must be a whole number of customers, at least 1"
EXPLORATION_OUTSIDE = "the exploration share must be a number from 0 to 0.5"


# Field validators rather than ``clean``: an error lands on its field in every form, and
# the check constraint on the same field is then not reported a second time.
def prior_inside(value: float) -> None:
    if not 0 < value < 1:
        raise ValidationError(PRIOR_OUTSIDE, code="prior_outside")


def exploration_inside(value: float) -> None:
    if not 0 <= value <= 0.5:
        raise ValidationError(EXPLORATION_OUTSIDE, code="exploration_outside")


class RiskRule(models.Model):
    """Conditions over a scoring run's features and scores; every customer matching all of
    them gets the rule listed in their case (and, through a campaign targeting the rule, a
    proposed offer)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, help_text="What the rule means, for agents")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    priority = models.PositiveSmallIntegerField(
        default=100,
        help_text="Higher first: a case listing several rules is titled and routed by the "
        "highest (queues sort cases by the value of acting on them)",
    )
    cooldown_days = models.PositiveSmallIntegerField(
        default=14,
        help_text="After a case listing this rule is closed, the rule does not list the same "
        "customer again for this many days",
    )
    escalate_after_hours = models.PositiveSmallIntegerField(
        default=24,
        help_text="High-severity cases on a to-do list not acknowledged within this many hours "
        "escalate",
    )
    queue = models.CharField(
        max_length=50, default=SHARED_QUEUE, help_text="Queue of agents that sees the cases"
    )
    include_lost = models.BooleanField(
        default=False, help_text=INCLUDE_LOST_HELP.format(what="open cases for them")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Assign every case this rule opens to this agent; empty leaves them in the queue",
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
        max_length=40,
        blank=True,
        help_text="A number; for tier: high, medium or low; for stage: active, at risk, "
        "lapsing or lost",
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
    """A case: everything that is wrong with one customer now, in one row. Rule hits on the
    same customer fold into their one open case, which lists every rule that matched
    (``case_reasons``); ``rule`` is the highest-priority one, which titles and routes it.

    ``priority`` is the expected incremental value of the best offer proposed for the
    customer (what acting on the case is worth); each queue or agent has a daily capacity,
    and the top cases within it are on today's to-do list (``planned_on`` set) and pushed
    to chat, the rest are watched.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        ACTIONED = "actioned", "Actioned"
        DISMISSED = "dismissed", "Dismissed"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        WON_BACK = "won_back", "Won back (ordered again)"
        HANDLED = "handled", "Handled by an agent"
        LOST = "lost", "Lost: left to the automatic win-back"
        OFFER_ENDED = "offer_ended", "Its offers ended without an order"
        MERGED = "merged", "Merged into the customer's case"

    OPEN_STATES = (State.OPEN, State.ACKNOWLEDGED, State.ACTIONED)
    # Open and nobody has acted on it yet: what to-do lists and capacity count.
    WAITING_STATES = (State.OPEN, State.ACKNOWLEDGED)

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
    stage = models.CharField(max_length=8, choices=Stage.choices, blank=True)
    priority = models.FloatField(
        default=0,
        help_text="Expected incremental value of the best offer proposed for the customer "
        "(0: no offer worth making)",
    )
    planned_on = models.DateField(
        null=True,
        blank=True,
        help_text="The day's plan that put it on a to-do list (within capacity); empty: watched",
    )
    handled_at = models.DateTimeField(
        null=True, blank=True, help_text="When someone acted on it (offer decided, closed)"
    )

    class Meta:
        verbose_name = "case"
        verbose_name_plural = "cases"
        ordering = ["-raised_at", "-id"]
        constraints = [
            # One open case per customer: rule hits fold into it. Also finds a customer's
            # open case when tonight's hits are added.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(state__in=["open", "acknowledged", "actioned"]),
                name="one_open_case_per_customer",
            ),
        ]
        # Lists read by the console and the planner, each a partial index that holds only
        # what the list shows, highest priority first.
        indexes = [
            models.Index(
                F("queue"),
                F("priority").desc(),
                condition=Q(state__in=["open", "acknowledged"], assigned_to__isnull=True),
                name="case_queue",
            ),
            # Every case an agent ever had, for finding them by agent (and for the foreign
            # key); their waiting ones, the agent's lists, apart, or each read of the lists
            # would step over the agent's whole history of closed cases.
            models.Index(
                F("assigned_to"),
                F("priority").desc(),
                condition=Q(assigned_to__isnull=False),
                name="case_agent",
            ),
            models.Index(
                F("assigned_to"),
                F("priority").desc(),
                condition=Q(state__in=["open", "acknowledged"], assigned_to__isnull=False),
                name="case_agent_waiting",
            ),
            models.Index(
                fields=["planned_on"],
                condition=Q(state__in=["open", "acknowledged"], planned_on__isnull=False),
                name="case_to_do",
            ),
            models.Index(
                fields=["handled_at"], condition=Q(handled_at__isnull=False), name="case_handled"
            ),
            models.Index(fields=["customer", "-closed_at"], name="case_cooldown"),
            models.Index(
                fields=["won_back_order"],
                condition=Q(won_back_order__isnull=False),
                name="alert_won_back_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} · customer {self.customer_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def is_waiting(self) -> bool:
        return self.state in self.WAITING_STATES

    @property
    def is_to_do(self) -> bool:
        return self.planned_on is not None and self.is_waiting


class CaseReason(models.Model):
    """A rule that matched the customer of a case, from the scoring day it first did. Its
    message is the rule's description; the cooldown after the case closes is per rule."""

    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, related_name="case_reasons", db_index=False
    )
    rule = models.ForeignKey(RiskRule, on_delete=models.PROTECT, related_name="case_reasons")
    as_of = models.DateField(help_text="The scoring day the rule first matched")

    class Meta:
        ordering = ["alert", "-rule__priority", "rule__name"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "rule"], name="one_reason_per_rule")
        ]

    def __str__(self) -> str:
        return f"{self.rule} on case {self.alert_id}"


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
        "prior response",
        default=0.05,
        validators=[prior_inside],
        help_text="Your prior: the share of customers about to leave whom the offer keeps, "
        "strictly between 0 and 1. Learned from the control arm as outcomes come in.",
    )
    prior_strength = models.PositiveIntegerField(
        default=50,
        validators=[MinValueValidator(1, PRIOR_STRENGTH)],
        help_text="How many customers' worth of evidence the prior counts as: the learned "
        "response leaves it once more outcomes than this are in",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["offer_type", "value"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expected_response__gt=0, expected_response__lt=1),
                name="offer_prior_inside_0_1",
                violation_error_message=PRIOR_OUTSIDE,
            ),
            models.CheckConstraint(
                condition=Q(prior_strength__gt=0),
                name="offer_prior_strength",
                violation_error_message=PRIOR_STRENGTH,
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
    target_stage = models.CharField(
        max_length=8,
        choices=Stage.choices,
        blank=True,
        help_text="Or: every customer scored in this lifecycle stage",
    )
    include_lost = models.BooleanField(
        default=False, help_text=INCLUDE_LOST_HELP.format(what="target them")
    )
    offers = models.ManyToManyField(Offer, related_name="campaigns")
    channels = models.JSONField(
        default=list, help_text='Channels in order of preference, e.g. ["email", "sms"]'
    )
    control_share = models.FloatField(
        default=0.1, help_text="Share of targeted customers held out to measure the effect"
    )
    exploration_share = models.FloatField(
        default=0.1,
        validators=[exploration_inside],
        help_text="Share of targeted customers (0 to 0.5) who get a random eligible offer "
        "instead of the best one, so every offer keeps being measured on every kind of "
        "customer",
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
                condition=Q(exploration_share__gte=0, exploration_share__lte=0.5),
                name="campaign_exploration_share",
                violation_error_message=EXPLORATION_OUTSIDE,
            ),
            models.CheckConstraint(
                condition=Q(target_rule__isnull=False) | ~Q(target_tier="") | ~Q(target_stage=""),
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
        if self.target_rule_id is None and not self.target_tier and not self.target_stage:
            raise ValidationError("choose a target rule, a target tier or a target stage")

    @property
    def targets_lost(self) -> bool:
        """Whether lost customers may be in this campaign: only if it targets them by
        stage or an admin ticked it; otherwise they are the automatic win-back's."""
        return self.include_lost or self.target_stage == Stage.LOST


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
    expected_uplift = models.FloatField(
        null=True,
        blank=True,
        help_text="Retention uplift in the window the offer was expected to bring (learned)",
    )
    exploration = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The offer was drawn at random among the eligible ones (exploration), "
        "not chosen as the best",
    )
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


class AuditAction(models.TextChoices):
    """What an audit row records (``AuditEntry.Action``): one member per kind of event."""

    # Alerts
    ACKNOWLEDGED = "acknowledged", "Alert acknowledged"
    ASSIGNED = "assigned", "Alert assigned"
    ACTIONED = "actioned", "Alert actioned"
    RESOLVED = "resolved", "Alert resolved (handled)"
    WON_BACK = "won_back", "Alert resolved (won back)"
    ESCALATED = "escalated", "Alert escalated"
    OFFER_ENDED = "offer_ended", "Case closed (every offer ended without an order)"
    LEFT_TO_WIN_BACK = "left_to_win_back", "Case closed (customer lost: left to the win-back)"
    CAPACITY_CHANGED = "capacity_changed", "Daily capacity changed"
    # Models
    MODEL_PROMOTED = "model_promoted", "Champion model promoted"
    MODEL_ROLLED_BACK = "model_rolled_back", "Champion model rolled back"
    # Alerts and offers
    DISMISSED = "dismissed", "Dismissed"
    # Offers (interventions), from proposal to outcome
    PROPOSED = "proposed", "Offer proposed"
    HELD_OUT = "held_out", "Held out (control)"
    APPROVED = "approved", "Offer approved"
    EDITED = "edited", "Offer edited and approved"
    BLOCKED = "blocked", "Offer blocked"
    QUEUED = "queued", "Offer queued"
    SENT = "sent", "Offer sent"
    DELIVERED = "delivered", "Offer delivered"
    FAILED = "failed", "Offer failed"
    RETRIED = "retried", "Offer queued again"
    CONVERTED = "converted", "Offer converted"
    EXPIRED = "expired", "Offer expired"
    COUPON_REDEEMED = "coupon_redeemed", "Coupon redeemed"
    SIMULATED_RESPONSE = "simulated_response", "Simulated response (synthetic shop)"
    # People
    CUSTOMER_ERASED = "customer_erased", "Customer's personal data erased"
    CHAT_LINKED = "chat_linked", "Chat linked"
    CHAT_UNLINKED = "chat_unlinked", "Chat unlinked"
    # Only migration 0012 writes this: a row stored with an action outside this set
    # before it existed keeps its original text in ``detail["legacy_action"]``.
    LEGACY = "legacy", "Untyped (written before typed actions)"


class AuditEntry(models.Model):
    """Append-only: one row per change of an alert or intervention, with who caused it.

    Rows are written only by ``retention.services.audit.audit_write``, which takes a member
    of :class:`Action`; the table refuses any other action too.
    """

    Action = AuditAction

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
    action = models.CharField(max_length=32, choices=Action.choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["-at"], name="audit_time"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="audit_actor"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=AuditAction.values), name="audit_action_known"
            )
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


class UpliftModel(models.Model):
    """What was learned on one day about who responds to which offer: each offer's effect
    (and per risk tier where there are enough outcomes) shrunk toward the admin's prior,
    and, once there are enough outcomes, a per-customer X-learner (pickled)."""

    as_of = models.DateField(help_text="Outcomes finished by this day were learned from")
    fitted_at = models.DateTimeField()
    effects = models.JSONField(
        default=dict, help_text="Per offer id: the posterior effect, overall and per tier"
    )
    features = models.JSONField(default=list)
    treated = models.PositiveIntegerField(default=0)
    control = models.PositiveIntegerField(default=0)
    artifact = models.BinaryField(blank=True, help_text="The pickled per-customer learner")
    checksum = models.CharField(max_length=64, blank=True)
    offers_modelled = models.JSONField(
        default=list, help_text="Offer ids with a per-customer model"
    )

    class Meta:
        ordering = ["-as_of", "-id"]

    def __str__(self) -> str:
        return f"uplift learned on {self.as_of}"
