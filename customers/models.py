"""The shop's data: who the customers are, what they bought and what they did.

Every row that carries a business timestamp (orders, events) is indexed by
``(customer, timestamp)`` because features, labels and the 360 view all ask for one
customer's rows in a time range, and the nightly aggregates scan by time.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    """Channels through which a customer can be contacted; consent is kept per channel."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Webhook (shop app / push)"


class Customer(models.Model):
    external_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    time_zone = models.CharField(max_length=64, default="UTC")
    signup_date = models.DateField(null=True, blank=True)
    email_consent = models.BooleanField(default=False)
    email_consent_at = models.DateTimeField(null=True, blank=True)
    sms_consent = models.BooleanField(default=False)
    sms_consent_at = models.DateTimeField(null=True, blank=True)
    webhook_consent = models.BooleanField(default=False)
    webhook_consent_at = models.DateTimeField(null=True, blank=True)
    marketing_opt_out = models.BooleanField(default=False)
    marketing_opt_out_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When the customer's personal data was erased"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["signup_date"]),
            # Scoring asks for the erased few among a million customers every night.
            models.Index(
                fields=["erased_at"], condition=Q(erased_at__isnull=False), name="customer_erased"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    def has_consent(self, channel: Channel | str) -> bool:
        """Consent for one channel; a marketing opt-out overrides every channel."""
        if self.marketing_opt_out:
            return False
        return bool(getattr(self, f"{Channel(channel).value}_consent"))


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=100, db_index=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        REFUNDED = "refunded", "Refunded"
        CANCELLED = "cancelled", "Cancelled"

    class SalesChannel(models.TextChoices):
        WEB = "web", "Web shop"
        APP = "app", "Mobile app"
        MARKETPLACE = "marketplace", "Marketplace"
        STORE = "store", "Physical store"
        PHONE = "phone", "Phone"

    external_id = models.CharField(max_length=64, unique=True)
    # db_index=False: the (customer, placed_at) index serves customer lookups; a second
    # index would only slow every bulk load down.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    placed_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    sales_channel = models.CharField(
        max_length=16, choices=SalesChannel.choices, default=SalesChannel.WEB
    )

    class Meta:
        ordering = ["-placed_at"]
        indexes = [
            models.Index(fields=["customer", "placed_at"], name="order_customer_time"),
            models.Index(fields=["placed_at"], name="order_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_non_negative"),
        ]

    def __str__(self) -> str:
        return self.external_id


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", db_index=False
    )  # the unique (order, position) index serves lookups by order
    position = models.PositiveSmallIntegerField()
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sku = models.CharField(max_length=64, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["order", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="order_line_position"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="line_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.position} {self.sku} x{self.quantity}"


class Event(models.Model):
    class Kind(models.TextChoices):
        VISIT = "visit", "Visit"
        PRODUCT_VIEW = "product_view", "Product view"
        ADD_TO_CART = "add_to_cart", "Add to cart"
        LOGIN = "login", "Login"
        REVIEW = "review", "Review"
        SUPPORT_TICKET = "support_ticket", "Support ticket"

    # Optional: trackers that send ids get idempotent re-sends; bulk history may have none.
    external_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", db_index=False
    )  # the (customer, kind, occurred_at) index serves lookups by customer
    kind = models.CharField(max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    value = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Review: the rating 1-5. Product view / add to cart: the price.",
    )
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(
                fields=["customer", "kind", "occurred_at"], name="event_customer_kind_time"
            ),
            models.Index(fields=["occurred_at"], name="event_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="review") | Q(value__gte=1, value__lte=5),
                name="review_rating_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.customer_id} {self.occurred_at:%Y-%m-%d}"


class OfferType(models.TextChoices):
    """Kinds of retention offer; the synthetic shop holds a true response to each."""

    PERCENT_OFF = "percent_off", "Percent off"
    FIXED_AMOUNT = "fixed_amount", "Fixed amount off"
    FREE_SHIPPING = "free_shipping", "Free shipping"
    LOYALTY_POINTS = "loyalty_points", "Loyalty points"
    PRODUCT_RECOMMENDATION = "product_recommendation", "Product recommendation"


class SyntheticShop(models.Model):
    """One generated shop: the seed and the process parameters needed to recompute the truth."""

    seed = models.BigIntegerField()
    start = models.DateField()
    end = models.DateField()
    customers = models.PositiveIntegerField()
    params = models.JSONField(help_text="Generating-process parameters (see customers.synthetic)")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"synthetic shop seed={self.seed} {self.start}..{self.end}"


class SyntheticTruth(models.Model):
    """Ground truth of one synthetic customer. Never read by features or models."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="synthetic_truth"
    )
    shop = models.ForeignKey(SyntheticShop, on_delete=models.CASCADE, related_name="truths")
    purchase_rate = models.FloatField(help_text="Latent purchases per day while alive")
    dropout_prob = models.FloatField(help_text="Probability of leaving after each purchase")
    session_rate = models.FloatField(help_text="Latent browsing sessions per day while alive")
    spend_level = models.FloatField(help_text="Typical basket value multiplier")
    dropped_out_at = models.DateTimeField(
        null=True, blank=True, help_text="Hidden: when the customer left (diagnostics only)"
    )
    true_churn_prob = models.FloatField(
        null=True,
        help_text="P(no paid order within the horizon after the shop's end), from the process",
    )
    horizon_days = models.PositiveSmallIntegerField(default=90)

    def __str__(self) -> str:
        return f"truth for customer {self.customer_id}"


class SyntheticResponse(models.Model):
    """How one synthetic customer truly reacts to one offer type (heterogeneous effects)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # the unique (customer, offer_type) index serves lookups by customer
    offer_type = models.CharField(max_length=32, choices=OfferType.choices)
    purchase_boost = models.FloatField(
        help_text="Probability the offer triggers an extra order within the response window"
    )
    dropout_shock = models.FloatField(
        help_text="Probability the offer makes an active customer leave (negative responders)"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "offer_type"], name="one_response_per_offer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.offer_type} response of customer {self.customer_id}"
