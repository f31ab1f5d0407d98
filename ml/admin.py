"""Admin for the churn definition, the model registry and scoring runs.

Promotion and rollback go through ``ml.services`` like the commands do, so the gate's
bookkeeping (one champion, promotion times for rollback) holds whichever surface acts.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.charts import bar_chart, calibration_chart, roc_chart
from core.formatting import money, percent
from core.paginators import LargeTableAdmin
from ml.models import ChurnDefinition, CustomerScore, ModelVersion, ScoringRun
from ml.services import promote, rollback

METRIC_LABELS = [
    ("auc", "AUC"),
    ("pr_auc", "PR AUC"),
    ("brier", "Brier score"),
    ("log_loss", "log loss"),
    ("churn_rate", "churn rate"),
    ("threshold", "alert threshold"),
    ("precision", "precision at the threshold"),
    ("recall", "recall at the threshold"),
    ("top_decile_lift", "lift in the riskiest 10%"),
    ("top_decile_capture", "churners caught in the riskiest 10%"),
]


@admin.register(ChurnDefinition)
class ChurnDefinitionAdmin(admin.ModelAdmin):
    list_display = ("name", "horizon_days", "qualifying_statuses", "high_threshold", "is_active")
    readonly_fields = ("created_at", "updated_at")


def _metric(name: str, label: str):
    def show(obj: ModelVersion) -> str:
        value = obj.metrics.get(name)
        return "-" if value is None else f"{value:.4f}"

    show.short_description = label
    return show


@admin.display(description="validation AUC (mean ± sd, folds)")
def _validation(obj: ModelVersion) -> str:
    mean, std = obj.metrics.get("validation_auc"), obj.metrics.get("validation_auc_std")
    if mean is None or mean != mean:  # missing, or NaN: no fold held both outcomes
        return "-"
    spread = "" if std is None or std != std else f" ± {std:.4f}"
    return f"{mean:.4f}{spread} ({obj.metrics.get('validation_folds', '?')})"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "algorithm",
        "status",
        _metric("auc", "AUC"),
        _metric("brier", "Brier"),
        _metric("pr_auc", "PR AUC"),
        _metric("top_decile_lift", "lift@10%"),
        _validation,
        "trained_as_of",
        "holdout_cutoff",
        "promoted_at",
    )
    list_filter = ("status", "algorithm")
    exclude = ("artifact", "reference", "metrics", "search")
    readonly_fields = [
        f.name
        for f in ModelVersion._meta.fields
        if f.name not in {"artifact", "reference", "id", "metrics", "search"}
    ] + ["holdout_metrics", _validation, "roc_curve", "calibration"]
    actions = ("make_champion", "roll_back")

    def has_add_permission(self, request) -> bool:
        return False  # versions come from training only

    def has_change_permission(self, request, obj=None) -> bool:
        # A version is what training produced; "change" only allows promotion and rollback.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Holdout metrics")
    def holdout_metrics(self, obj: ModelVersion) -> str:
        m = obj.metrics or {}
        shares = {"churn_rate", "precision", "recall", "top_decile_capture", "threshold"}
        rows = [
            (label, percent(m[key], 1) if key in shares else f"{m[key]:.4f}")
            for key, label in METRIC_LABELS
            if isinstance(m.get(key), int | float)
        ]
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description="ROC curve (holdout)")
    def roc_curve(self, obj: ModelVersion) -> str:
        m = obj.metrics or {}
        if not m.get("roc"):
            return "not recorded for this version (the next training records it)"
        return mark_safe(roc_chart([tuple(p) for p in m["roc"]], auc=m["auc"]))

    @admin.display(description="Calibration by decile (holdout)")
    def calibration(self, obj: ModelVersion) -> str:
        rows = (obj.metrics or {}).get("calibration", [])
        if not rows:
            return "-"
        # Formatted before format_html_join, which escapes its arguments into strings
        # (a format spec such as {:.2f} then fails on them).
        lines = format_html_join(
            "",
            "<li>predicted {} - observed {} ({} customers)</li>",
            ((percent(r["predicted"]), percent(r["observed"]), f"{r['n']:,}") for r in rows),
        )
        return format_html("{}<ul>{}</ul>", mark_safe(calibration_chart(rows)), lines)

    @admin.action(description="Make the selected version the champion", permissions=["change"])
    def make_champion(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = promote(version=queryset.get(), user=request.user, via="admin")
        self.message_user(request, f"#{version.pk} {version.algorithm} is now the champion.")

    @admin.action(description="Roll back to the previous champion", permissions=["change"])
    def roll_back(self, request, queryset):
        try:
            version = rollback(user=request.user, via="admin")
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"#{version.pk} {version.algorithm} is the champion again.")


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = (
        "as_of",
        "status",
        "model_version",
        "customers_scored",
        "tiers",
        "drift_state",
        "finished_at",
    )
    list_filter = ("status", "drift_flagged")
    list_select_related = ("model_version",)
    # Words and a picture instead of the JSON and the boolean's green tick.
    exclude = ("drift", "drift_flagged", "tier_counts")
    readonly_fields = [
        "drift_state",
        "drift_chart",
        "tiers",
        *(
            f.name
            for f in ScoringRun._meta.fields
            if f.name not in {"drift", "drift_flagged", "tier_counts"}
        ),
    ]

    @admin.display(description="customers per risk tier")
    def tiers(self, obj: ScoringRun) -> str:
        counts = obj.tier_counts or {}
        return " · ".join(f"{t} {counts[t]:,}" for t in ("high", "medium", "low") if t in counts)

    @admin.display(description="Drift per feature (PSI)")
    def drift_chart(self, obj: ScoringRun) -> str:
        if not obj.drift:
            return "not measured"
        ranked = sorted(obj.drift.items(), key=lambda kv: -kv[1])[:12]
        return mark_safe(
            bar_chart(
                ranked,
                title=f"Most drifting features on {obj.as_of}",
                vlines=[(0.1, "0.1"), (0.25, "0.25")],
                highlight=lambda v: v > 0.25,
                value_format=lambda v: f"{v:.2f}",
            )
        )

    @admin.display(description="Drift (PSI > 0.25)", ordering="-max_psi")
    def drift_state(self, obj: ScoringRun) -> str:
        # Words, not the boolean's green tick: "no drift" must not look like a pass mark.
        return obj.drift_summary()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CustomerScore)
class CustomerScoreAdmin(LargeTableAdmin):
    list_display = ("customer", "risk", "tier", "value", "source", "run")
    list_filter = ("tier", "source")
    list_select_related = ("customer", "run")
    raw_id_fields = ("customer", "run")
    search_fields = ("=customer__external_id", "^customer__email")
    exclude = ("reasons",)
    readonly_fields = [*(f.name for f in CustomerScore._meta.fields if f.name != "reasons"), "why"]

    @admin.display(description="churn risk", ordering="probability")
    def risk(self, obj: CustomerScore) -> str:
        return percent(obj.probability)

    @admin.display(description="value at risk", ordering="value_at_risk")
    def value(self, obj: CustomerScore) -> str:
        return money(obj.value_at_risk)

    @admin.display(description="reasons")
    def why(self, obj: CustomerScore) -> str:
        return format_html(
            "<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((r,) for r in obj.reasons))
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
