"""What churn means, the trained models, and the scores they produced.

A score is only comparable with the labels it was trained on, so every ``ModelVersion``
remembers the fingerprint of the ``ChurnDefinition`` it learnt; editing the definition
leaves the champion unusable until a retrain (scoring refuses a mismatch).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from django.db import models
from django.db.models import Q

from customers.models import Customer, Order


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
        ]

    def __str__(self) -> str:
        return self.name

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
    reasons = models.JSONField(default=list, help_text="Top reasons in plain words")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="one_score_per_run"),
        ]
        indexes = [models.Index(fields=["customer", "run"], name="score_customer_run")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.probability:.2f} ({self.tier})"
