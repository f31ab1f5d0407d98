"""What churn means, the trained models, and the scores they produced.

A score is only comparable with the labels it was trained on, so every ``ModelVersion``
remembers the fingerprint of the ``ChurnDefinition`` it learnt; editing the definition
leaves the champion unusable until a retrain (scoring refuses a mismatch).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from customers.models import Customer, Order
from ml import stages

STAGE_SHARE = "must be a share between 0 and 1 (both excluded)"
STAGE_DAYS = "must be at least 1 day"
STAGE_ORDER = "must be more days than the lapsing days"


def _default_statuses() -> list[str]:
    return [Order.Status.PAID]


class ChurnDefinition(models.Model):
    name = models.CharField(max_length=100, default="No paid order within 90 days")
    horizon_days = models.PositiveSmallIntegerField(
        default=90, help_text="A customer has churned if no qualifying order follows within this"
    )
    qualifying_statuses = models.JSONField(
        default=_default_statuses, help_text='Order statuses that count as buying, e.g. ["paid"]'
    )
    min_orders = models.PositiveSmallIntegerField(
        default=1, help_text="Qualifying orders a customer needs before the cut-off to be scored"
    )
    min_history_days = models.PositiveSmallIntegerField(
        default=30,
        help_text="Customers whose first order is more recent get the BG/NBD score instead of "
        "the model's, because their features are mostly empty",
    )
    high_threshold = models.FloatField(default=0.7, help_text="Probability from which risk is high")
    medium_threshold = models.FloatField(
        default=0.4, help_text="Probability from which risk is medium"
    )
    at_risk_from = models.FloatField(
        default=0.5,
        help_text="Stage: churn probability from which a customer is at risk (between 0 and 1)",
    )
    lapsing_after_days = models.PositiveSmallIntegerField(
        default=120,
        help_text="Stage: an at-risk customer with no order for this many days is lapsing",
    )
    lost_after_days = models.PositiveSmallIntegerField(
        default=365,
        help_text="Stage: no order for this many days and the customer is lost (more than "
        "the lapsing days)",
    )
    lost_below_p_alive = models.FloatField(
        default=0.1,
        help_text="Stage: lost when the probability that the purchase pattern is still "
        "active (BG/NBD) is below this (between 0 and 1)",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_definition"
            ),
            models.CheckConstraint(
                condition=Q(medium_threshold__lte=models.F("high_threshold"))
                & Q(medium_threshold__gt=0)
                & Q(high_threshold__lt=1),
                name="thresholds_ordered",
            ),
            models.CheckConstraint(condition=Q(horizon_days__gt=0), name="horizon_positive"),
            models.CheckConstraint(
                condition=Q(at_risk_from__gt=0, at_risk_from__lt=1)
                & Q(lost_below_p_alive__gt=0, lost_below_p_alive__lt=1)
                & Q(lapsing_after_days__gt=0, lost_after_days__gt=models.F("lapsing_after_days")),
                name="stage_thresholds_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse thresholds no customer could be staged by, naming the field (the
        constraint only names itself)."""
        errors = {}
        for name in ("at_risk_from", "lost_below_p_alive"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                errors[name] = STAGE_SHARE
        if self.lapsing_after_days is not None and self.lapsing_after_days < 1:
            errors["lapsing_after_days"] = STAGE_DAYS
        if (
            self.lapsing_after_days is not None
            and self.lost_after_days is not None
            and self.lost_after_days <= self.lapsing_after_days
        ):
            errors["lost_after_days"] = STAGE_ORDER
        if errors:
            raise ValidationError(errors)

    def stage_thresholds(self) -> stages.StageThresholds:
        return stages.StageThresholds(
            at_risk_from=self.at_risk_from,
            lapsing_after_days=self.lapsing_after_days,
            lost_after_days=self.lost_after_days,
            lost_below_p_alive=self.lost_below_p_alive,
        )

    def fingerprint(self) -> str:
        """What the labels depend on; thresholds are excluded because they do not change
        what a model learns, only how its probabilities are read."""
        labels = {
            "horizon_days": self.horizon_days,
            "qualifying_statuses": sorted(self.qualifying_statuses),
            "min_orders": self.min_orders,
            "min_history_days": self.min_history_days,
        }
        return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]

    def tiers(self, probability: np.ndarray) -> np.ndarray:
        """The risk tier of each probability: the one boundary rule, for a whole run at
        once and (through :meth:`tier`) for one score."""
        return np.select(
            [probability >= self.high_threshold, probability >= self.medium_threshold],
            [RiskTier.HIGH.value, RiskTier.MEDIUM.value],
            RiskTier.LOW.value,
        )

    def tier(self, probability: float) -> str:
        return str(self.tiers(np.array([probability], dtype=np.float64))[0])


class RiskTier(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Stage(models.TextChoices):
    """Where a customer stands in their lifecycle (see ``ml.stages``)."""

    ACTIVE = stages.ACTIVE, "Active"
    AT_RISK = stages.AT_RISK, "At risk"
    LAPSING = stages.LAPSING, "Lapsing"
    LOST = stages.LOST, "Lost"


# Tiers from least to most at risk: their rank is their code where tiers travel as numbers.
TIER_ORDER = (RiskTier.LOW.value, RiskTier.MEDIUM.value, RiskTier.HIGH.value)


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        CHAMPION = "champion", "Champion"
        RETIRED = "retired", "Retired"

    algorithm = models.CharField(max_length=50)
    params = models.JSONField(default=dict)
    features = models.JSONField(help_text="Feature names in the order the model expects")
    definition = models.ForeignKey(ChurnDefinition, on_delete=models.PROTECT, related_name="+")
    definition_fingerprint = models.CharField(max_length=16)
    trained_as_of = models.DateField(help_text="The day training ran for (its as_of)")
    training_cutoffs = models.JSONField(help_text="Cut-off dates whose labels trained the model")
    holdout_cutoff = models.DateField(help_text="The later cut-off the metrics come from")
    training_rows = models.PositiveIntegerField()
    holdout_rows = models.PositiveIntegerField()
    metrics = models.JSONField(help_text="Holdout metrics: AUC, PR AUC, Brier, log loss, lift ...")
    search = models.JSONField(default=list, help_text="Hyper-parameter settings tried")
    reference = models.JSONField(
        default=dict, help_text="Training medians and bins, for explanations and drift"
    )
    library_versions = models.JSONField(default=dict)
    fit_seconds = models.FloatField(default=0)
    artifact = models.BinaryField(help_text="The pickled model")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the artifact")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="champion"), name="one_champion"
            ),
        ]
        indexes = [models.Index(fields=["status", "-promoted_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.algorithm} ({self.status})"


class ScoringRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    as_of = models.DateField()
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="scoring_runs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    customers_scored = models.PositiveIntegerField(default=0)
    tier_counts = models.JSONField(default=dict)
    stage_counts = models.JSONField(default=dict, help_text="Customers per lifecycle stage")
    seconds = models.JSONField(default=dict, help_text="Time spent per step")
    drift = models.JSONField(default=dict, help_text="Population stability index per feature")
    max_psi = models.FloatField(null=True, blank=True)
    drift_flagged = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    frame = models.FileField(
        upload_to="scoring-runs/",
        blank=True,
        help_text="Features and product picks of every scored customer, read with their scores "
        "by rules, offers and rule previews",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-as_of"])]

    def __str__(self) -> str:
        return f"scoring {self.as_of} ({self.status})"

    def drift_summary(self, *, top: int = 3) -> str:
        """In words: the drifting features with their PSI, or the largest PSI when none
        drifts; a run without drift figures says so."""
        if not self.drift:
            return "not measured"
        ranked = sorted(self.drift.items(), key=lambda kv: -kv[1])
        if not self.drift_flagged:
            name, value = ranked[0]
            return f"stable (largest PSI {value:.2f}, {name})"
        named = ", ".join(f"{name} {value:.2f}" for name, value in ranked[:top])
        return f"⚠ drift: {named}"


class CustomerScore(models.Model):
    """One customer's score in one run. The latest run holds everyone's current score."""

    class Source(models.TextChoices):
        MODEL = "model", "Churn model"
        BGNBD = "bgnbd", "BG/NBD (too little history)"

    # Both foreign keys lead one of the two composite indexes below, which serve their
    # lookups too; an index each of their own would only slow the bulk write.
    run = models.ForeignKey(
        ScoringRun, on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    probability = models.FloatField()
    tier = models.CharField(max_length=8, choices=RiskTier.choices)
    expected_spend = models.FloatField(help_text="Expected spend in the horizon if retained")
    value_at_risk = models.FloatField(help_text="Probability times expected spend")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MODEL)
    stage = models.CharField(
        max_length=8,
        choices=Stage.choices,
        blank=True,
        db_default="",
        help_text="Lifecycle stage on the run's day (empty: scored before stages existed)",
    )
    reasons = models.JSONField(default=list, help_text="Top reasons in plain words")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="one_score_per_run"),
        ]
        indexes = [models.Index(fields=["customer", "run"], name="score_customer_run")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.probability:.2f} ({self.tier})"
