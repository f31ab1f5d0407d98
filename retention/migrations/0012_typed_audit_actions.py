"""Typed audit actions: ``AuditEntry.action`` takes its values from ``AuditEntry.Action``
and the table refuses any other.

Every release wrote its actions with the spellings the members now have, so stored rows
keep their action as it is. A row holding any other text (typed in by hand, or written
by code outside this repository) becomes ``legacy``, its text kept in
``detail["legacy_action"]``; reversing puts the text back. The members are listed here
rather than imported, so this migration keeps its meaning when later releases add some.
"""

from django.db import migrations, models

ACTIONS = [
    "acknowledged",
    "assigned",
    "actioned",
    "resolved",
    "won_back",
    "escalated",
    "dismissed",
    "proposed",
    "held_out",
    "approved",
    "edited",
    "blocked",
    "queued",
    "sent",
    "delivered",
    "failed",
    "retried",
    "converted",
    "expired",
    "coupon_redeemed",
    "simulated_response",
    "customer_erased",
    "chat_linked",
    "chat_unlinked",
    "legacy",
]
LEGACY = "legacy"
TEXT = "legacy_action"  # the original action of a legacy row
WRAPPED = "legacy_detail"  # its original detail, when that was not an object
_CHUNK = 2000


def _rewrite(entries, change) -> None:
    """Apply ``change`` to the rows with these primary keys, a chunk at a time."""
    model = entries.model
    pks = list(entries.values_list("pk", flat=True))
    for start in range(0, len(pks), _CHUNK):
        rows = list(model.objects.filter(pk__in=pks[start : start + _CHUNK]))
        for row in rows:
            change(row)
        model.objects.bulk_update(rows, ["action", "detail"])


def _typed(row) -> None:
    detail = row.detail if isinstance(row.detail, dict) else {WRAPPED: row.detail}
    row.action, row.detail = LEGACY, {**detail, TEXT: row.action}


def _untyped(row) -> None:
    detail = dict(row.detail)
    row.action = detail.pop(TEXT)
    row.detail = detail[WRAPPED] if set(detail) == {WRAPPED} else detail


def type_actions(apps, schema_editor) -> None:
    AuditEntry = apps.get_model("retention", "AuditEntry")
    _rewrite(AuditEntry.objects.exclude(action__in=ACTIONS), _typed)


def untype_actions(apps, schema_editor) -> None:
    AuditEntry = apps.get_model("retention", "AuditEntry")
    _rewrite(AuditEntry.objects.filter(action=LEGACY, detail__has_key=TEXT), _untyped)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0011_joblock_to_core"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={"ordering": ["-at", "-id"], "verbose_name_plural": "audit entries"},
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("acknowledged", "Alert acknowledged"),
                    ("assigned", "Alert assigned"),
                    ("actioned", "Alert actioned"),
                    ("resolved", "Alert resolved (handled)"),
                    ("won_back", "Alert resolved (won back)"),
                    ("escalated", "Alert escalated"),
                    ("dismissed", "Dismissed"),
                    ("proposed", "Offer proposed"),
                    ("held_out", "Held out (control)"),
                    ("approved", "Offer approved"),
                    ("edited", "Offer edited and approved"),
                    ("blocked", "Offer blocked"),
                    ("queued", "Offer queued"),
                    ("sent", "Offer sent"),
                    ("delivered", "Offer delivered"),
                    ("failed", "Offer failed"),
                    ("retried", "Offer queued again"),
                    ("converted", "Offer converted"),
                    ("expired", "Offer expired"),
                    ("coupon_redeemed", "Coupon redeemed"),
                    ("simulated_response", "Simulated response (synthetic shop)"),
                    ("customer_erased", "Customer's personal data erased"),
                    ("chat_linked", "Chat linked"),
                    ("chat_unlinked", "Chat unlinked"),
                    ("legacy", "Untyped (written before typed actions)"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(type_actions, untype_actions, elidable=False),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.CheckConstraint(
                condition=models.Q(action__in=ACTIONS), name="audit_action_known"
            ),
        ),
    ]
