"""Admin for the retention workflow: rules (with a preview of today's matches), campaigns
(with their measured outcome), offers, templates (with a rendered preview), the contact
policy, and the alerts, interventions, outbox and audit log they produce.

Bulk actions call the same services as the bot and the console.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ml.selectors import NotReady, latest_run, run_frame
from retention import messages as texts
from retention.models import (
    Alert,
    AuditEntry,
    Campaign,
    CampaignOutcome,
    ContactPolicy,
    Coupon,
    Intervention,
    MessageTemplate,
    Offer,
    OutboxMessage,
    RiskRule,
    RuleCondition,
)
from retention.paginators import LargeTableAdmin
from retention.rules import InvalidCondition
from retention.services.alerts import AlertClosed, alert_close, rule_matches
from retention.services.audit import Actor
from retention.services.interventions import interventions_approve, interventions_dismiss


def _actor(request) -> Actor:
    return Actor.agent(request.user, via="admin")


class RuleConditionInline(admin.TabularInline):
    model = RuleCondition
    extra = 1


@admin.register(RiskRule)
class RiskRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "severity", "priority", "cooldown_days", "queue", "is_active")
    list_filter = ("is_active", "severity")
    list_editable = ("is_active",)
    inlines = [RuleConditionInline]
    readonly_fields = ("matches_today", "created_at", "updated_at")
    raw_id_fields = ("assignee",)

    @admin.display(description="Customers it matches in the latest scoring run")
    def matches_today(self, rule: RiskRule) -> str:
        run = latest_run()
        if rule.pk is None or run is None:
            return "save the rule after a scoring run to see how many customers it matches"
        try:
            matched = rule_matches(rule, frame := run_frame(run))
        except (NotReady, InvalidCondition) as exc:
            return str(exc)
        return f"{len(matched):,} of {len(frame):,} customers scored on {run.as_of}"


@admin.register(Alert)
class AlertAdmin(LargeTableAdmin):
    list_display = (
        "id",
        "customer",
        "rule",
        "severity",
        "state",
        "tier",
        "probability",
        "value_at_risk",
        "assigned_to",
        "queue",
        "raised_at",
        "escalated_at",
    )
    list_filter = ("state", "severity", "rule", "queue", "tier")
    list_select_related = ("customer", "rule", "assigned_to")
    raw_id_fields = ("customer", "assigned_to", "won_back_order")
    search_fields = ("=customer__external_id", "=customer__email")
    readonly_fields = ("reasons", "as_of", "raised_at", "probability", "value_at_risk", "tier")
    actions = ["dismiss_selected"]

    @admin.action(description="Dismiss selected alerts")
    def dismiss_selected(self, request, queryset):
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                alert_close(
                    alert_id=pk,
                    actor=_actor(request),
                    now=timezone.now(),
                    dismiss=True,
                    note="dismissed in the admin",
                )
                done += 1
            except AlertClosed:
                pass
        self.message_user(request, f"{done} alerts dismissed", messages.SUCCESS)


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ("name", "offer_type", "value", "min_order_value", "expected_response")
    list_filter = ("offer_type", "is_active")


class OutcomeInline(admin.TabularInline):
    model = CampaignOutcome
    extra = 0
    can_delete = False
    fields = ("as_of", "verdict", "uplift", "ci_low", "ci_high", "net_incremental_revenue", "arms")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "approval_mode", "target_rule", "target_tier", "latest")
    list_filter = ("status", "approval_mode")
    filter_horizontal = ("offers",)
    readonly_fields = ("outcome", "created_at")
    inlines = [OutcomeInline]

    @admin.display(description="Latest outcome")
    def latest(self, campaign: Campaign) -> str:
        outcome = campaign.outcomes.first()
        return outcome.verdict if outcome else "not measured yet"

    @admin.display(description="Outcome (treatment against control)")
    def outcome(self, campaign: Campaign) -> str:
        result = campaign.outcomes.first() if campaign.pk else None
        if result is None:
            return "not measured yet: evaluate_campaigns runs daily"
        rows = [
            (
                arm,
                values["customers"],
                values["retained"],
                f"{values['retention']:.1%}" if values["retention"] is not None else "-",
                values["revenue"],
            )
            for arm, values in result.arms.items()
        ]
        table = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            "<p><b>{}</b> (as of {})</p><table><tr><th>arm</th><th>customers</th>"
            "<th>retained</th><th>retention</th><th>revenue</th></tr>{}</table>"
            "<p>Net incremental revenue after discounts: {}</p>",
            result.verdict,
            result.as_of,
            table,
            result.net_incremental_revenue,
        )


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("__str__", "subject")
    readonly_fields = ("preview",)

    @admin.display(description="Preview with a sample customer")
    def preview(self, template: MessageTemplate) -> str:
        if template.pk is None:
            return "save to preview"
        sample = {
            "shop": "Your shop",
            "first_name": "Anna",
            "offer": texts.offer_text(template.offer_type or "percent_off", 10.0),
            "coupon": {
                "code": "7F3A9C2E41B8D605",
                "expires_at": timezone.now(),
                "min_order_value": 0,
            },
            "products": [{"name": "Trail socks", "price": "12.90"}],
        }
        subject, body = texts.render(template, sample)
        return format_html("<b>{}</b><pre>{}</pre>", subject, body)


@admin.register(ContactPolicy)
class ContactPolicyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return not ContactPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditInline(admin.TabularInline):
    model = AuditEntry
    extra = 0
    can_delete = False
    fields = ("at", "action", "from_state", "to_state", "actor_kind", "actor", "via", "detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Intervention)
class InterventionAdmin(LargeTableAdmin):
    list_display = (
        "id",
        "customer",
        "campaign",
        "arm",
        "state",
        "offer_type",
        "offer_value",
        "channel",
        "expected_net_value",
        "proposed_at",
    )
    list_filter = ("state", "arm", "campaign", "offer_type", "channel")
    list_select_related = ("customer", "campaign")
    raw_id_fields = ("customer", "alert", "converted_order", "decided_by")
    search_fields = ("=customer__external_id", "=customer__email")
    readonly_fields = ("arm", "state", "block_reason", "probability", "value_at_risk")
    inlines = [AuditInline]
    actions = ["approve_selected", "dismiss_selected"]

    @admin.action(description="Approve and send selected offers")
    def approve_selected(self, request, queryset):
        counts = interventions_approve(
            ids=queryset.values_list("pk", flat=True), actor=_actor(request), now=timezone.now()
        )
        self.message_user(
            request,
            f"{counts['queued']} queued, {counts['blocked']} blocked by the contact policy, "
            f"{counts['already_decided']} already decided",
            messages.SUCCESS,
        )

    @admin.action(description="Dismiss selected offers")
    def dismiss_selected(self, request, queryset):
        done = interventions_dismiss(
            ids=queryset.values_list("pk", flat=True),
            actor=_actor(request),
            now=timezone.now(),
            reason="dismissed in the admin",
        )
        self.message_user(request, f"{done} offers dismissed", messages.SUCCESS)


@admin.register(Coupon)
class CouponAdmin(LargeTableAdmin):
    list_display = ("code", "customer", "offer_type", "value", "expires_at", "redeemed_at")
    list_filter = ("offer_type",)
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "intervention", "order")
    search_fields = ("=code", "=customer__external_id")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(LargeTableAdmin):
    list_display = (
        "id",
        "channel",
        "recipient",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("state", "channel")
    raw_id_fields = ("intervention",)
    search_fields = ("=recipient", "=provider_message_id")
    readonly_fields = ("idempotency_key",)


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeTableAdmin):
    list_display = (
        "at",
        "action",
        "from_state",
        "to_state",
        "actor_kind",
        "actor",
        "via",
        "intervention",
        "alert",
    )
    list_filter = ("action", "actor_kind", "via")
    list_select_related = ("actor",)
    raw_id_fields = ("actor", "intervention", "alert")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
