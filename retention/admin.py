"""Admin for the retention workflow: rules (with a preview of today's matches), campaigns
(with their measured outcome), offers, templates (with a rendered preview), the contact
policy, and the alerts, interventions, outbox and audit log they produce.

Alerts, interventions, messages, coupons and audit rows are records of what the services
did: their forms are read-only for everyone, and every transition is an action calling the
same service as the bot and the console, with its limits and audit rows.

Staff accounts and API tokens are here too: only superusers grant superuser status or raw
permissions, and a token is shown once when it is issued.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from knox.models import AuthToken
from rest_framework.authtoken.models import TokenProxy

from core.formatting import money, percent, points
from core.paginators import LargeTableAdmin
from core.roles import ADMIN, AGENT
from customers.models import Channel, OfferType
from ml.selectors import NotReady, latest_run, run_frame
from retention import messages as texts
from retention.models import (
    AgentCapacity,
    Alert,
    AuditEntry,
    Campaign,
    CampaignOutcome,
    CaseReason,
    ContactPolicy,
    Coupon,
    Intervention,
    MessageTemplate,
    Offer,
    OutboxMessage,
    Queue,
    RiskRule,
    RuleCondition,
)
from retention.qini import qini_chart
from retention.rules import InvalidCondition
from retention.selectors import campaign_uplift, latest_uplift_model, todays_queue
from retention.services.alerts import AlertClosed, alert_assign, alert_close, rule_matches
from retention.services.audit import Actor
from retention.services.cases import capacity_set
from retention.services.interventions import (
    AlreadyDecided,
    OfferOutOfLimits,
    intervention_edit,
    interventions_approve,
    interventions_dismiss,
)
from retention.services.outbox import outbox_retry
from retention.services.tokens import api_token_create

# Shown when a form offers more than can be listed on the confirmation page.
_LISTED = 20


def _actor(request) -> Actor:
    return Actor.agent(request.user, via="admin")


def _in_console(customer) -> str:
    """A link to the customer's page in the console (risk, reasons, offer, timeline)."""
    url = reverse("console:customer", args=[customer.external_id])
    return format_html('<a href="{}">{}</a>', url, customer.external_id)


def _reasons(reasons) -> str:
    return format_html("<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((r,) for r in reasons)))


class RecordAdmin(admin.ModelAdmin):
    """Rows only services write. The change form shows them read-only (a POST to it is
    refused), nothing is added or deleted here, and "change" permission means being
    allowed the actions, which call the services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LargeRecordAdmin(RecordAdmin, LargeTableAdmin):
    pass


def _ask(modeladmin, request, queryset, form_class, title: str):
    """An action's intermediate page: returns the bound, valid form once the user has
    applied it, else a response showing the form (again, with errors, if invalid)."""
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            return form
    else:
        form = form_class()
    objects = list(queryset[: _LISTED + 1])
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "form": form,
        "objects": objects[:_LISTED],
        "more": max(0, len(objects) - _LISTED),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": request.POST["action"],
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/retention/action_form.html", context)


class NoteForm(forms.Form):
    note = forms.CharField(max_length=500, required=False, widget=forms.Textarea)


class DismissForm(forms.Form):
    reason = forms.CharField(max_length=200)


class OfferForm(forms.Form):
    offer_type = forms.ChoiceField(choices=OfferType.choices)
    offer_value = forms.DecimalField(max_digits=10, decimal_places=2, min_value=0)


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, is_staff=True, groups__name__in=[ADMIN, AGENT])
        .distinct()
        .order_by("username"),
        required=False,
        empty_label="nobody: back to the alert's queue",
    )


class RuleConditionInline(admin.TabularInline):
    model = RuleCondition
    extra = 1


@admin.register(RiskRule)
class RiskRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "severity",
        "priority",
        "cooldown_days",
        "queue",
        "include_lost",
        "is_active",
    )
    list_filter = ("is_active", "severity")
    list_editable = ("is_active",)
    inlines = [RuleConditionInline]
    readonly_fields = ("matches_today", "cases", "created_at", "updated_at")
    raw_id_fields = ("assignee",)

    @admin.display(description="Its cases")
    def cases(self, rule: RiskRule) -> str:
        if rule.pk is None:
            return "-"
        query = urlencode({"rule": rule.pk, "queue": rule.queue})
        url = f"{reverse('console:today')}?{query}"
        return format_html('<a href="{}">its open cases in the console</a>', url)

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


class CaseReasonInline(admin.TabularInline):
    model = CaseReason
    extra = 0
    can_delete = False
    fields = ("rule", "message", "as_of")
    readonly_fields = fields
    verbose_name = "reason"
    verbose_name_plural = "reasons (every rule that matched)"

    @admin.display(description="what it means")
    def message(self, reason: CaseReason) -> str:
        return reason.rule.description

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(LargeRecordAdmin):
    list_display = (
        "id",
        "customer_link",
        "rule",
        "severity",
        "state",
        "priority",
        "to_do",
        "stage",
        "tier",
        "risk",
        "value",
        "assigned_to",
        "queue",
        "raised_at",
        "escalated_at",
    )
    exclude = ("reasons",)
    readonly_fields = ("customer_link", "risk", "value", "why")
    list_filter = ("state", "severity", "stage", "rule", "queue", "tier")
    list_select_related = ("customer", "rule", "assigned_to")
    raw_id_fields = ("customer", "assigned_to", "won_back_order")
    search_fields = ("=customer__external_id", "=customer__email")
    ordering = ("-priority", "-id")
    inlines = [CaseReasonInline]
    actions = ["assign_selected", "resolve_selected", "dismiss_selected"]

    @admin.display(description="To do today", boolean=True)
    def to_do(self, alert: Alert) -> bool:
        return alert.is_to_do

    @admin.display(description="customer", ordering="customer__external_id")
    def customer_link(self, alert: Alert) -> str:
        return _in_console(alert.customer)

    @admin.display(description="churn risk", ordering="probability")
    def risk(self, alert: Alert) -> str:
        return percent(alert.probability)

    @admin.display(description="value at risk", ordering="value_at_risk")
    def value(self, alert: Alert) -> str:
        return money(alert.value_at_risk)

    @admin.display(description="reasons")
    def why(self, alert: Alert) -> str:
        return _reasons(alert.reasons)

    def _close(self, request, queryset, *, dismiss: bool, title: str):
        form = _ask(self, request, queryset, NoteForm, title)
        if not isinstance(form, NoteForm):
            return form
        done, closed = 0, 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                alert_close(
                    alert_id=pk,
                    actor=_actor(request),
                    now=timezone.now(),
                    dismiss=dismiss,
                    note=form.cleaned_data["note"],
                )
                done += 1
            except AlertClosed:
                closed += 1
        verb = "dismissed" if dismiss else "resolved"
        self.message_user(
            request, f"{done} alerts {verb}, {closed} were closed already", messages.SUCCESS
        )
        return None

    @admin.action(description="Resolve selected alerts (handled)", permissions=["change"])
    def resolve_selected(self, request, queryset):
        return self._close(request, queryset, dismiss=False, title="Resolve alerts")

    @admin.action(description="Dismiss selected alerts (nothing to do)", permissions=["change"])
    def dismiss_selected(self, request, queryset):
        return self._close(request, queryset, dismiss=True, title="Dismiss alerts")

    @admin.action(description="Assign selected alerts", permissions=["change"])
    def assign_selected(self, request, queryset):
        form = _ask(self, request, queryset, AssignForm, "Assign alerts")
        if not isinstance(form, AssignForm):
            return form
        done, closed = 0, 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                alert_assign(
                    alert_id=pk,
                    assignee=form.cleaned_data["assignee"],
                    actor=_actor(request),
                    now=timezone.now(),
                )
                done += 1
            except AlertClosed:
                closed += 1
        self.message_user(
            request, f"{done} alerts assigned, {closed} were closed already", messages.SUCCESS
        )
        return None


class CapacityAdmin(admin.ModelAdmin):
    """Capacities are set through ``capacity_set``, which audits the change and plans
    the day again; rows are not deleted (a list without one gets the default)."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _today(self, **which) -> str:
        today = todays_queue(day=timezone.localdate(), **which)
        return (
            f"{today.to_do_count:,} to do, {today.watching_count:,} watching, "
            f"{today.done_today:,} done today"
        )

    def _set(self, request, obj, form, **which) -> None:
        # The form's field refuses what the service would (below 1, not a whole number).
        saved = capacity_set(
            daily_capacity=form.cleaned_data["daily_capacity"],
            actor=_actor(request),
            now=timezone.now(),
            **which,
        )
        obj.pk = saved.pk


@admin.register(Queue)
class QueueAdmin(CapacityAdmin):
    list_display = ("name", "daily_capacity", "today")
    fields = ("name", "daily_capacity", "today")
    readonly_fields = ("today",)

    def get_readonly_fields(self, request, obj=None):
        # Rules route cases by the name: renaming would strand them in a queue of none.
        return ("name", "today") if obj is not None else ("today",)

    @admin.display(description="Today")
    def today(self, queue: Queue) -> str:
        return self._today(queue=queue.name) if queue.pk else "-"

    def save_model(self, request, obj, form, change) -> None:
        self._set(request, obj, form, queue=obj.name)


class AgentCapacityForm(forms.ModelForm):
    class Meta:
        model = AgentCapacity
        fields = ["user", "daily_capacity"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "user" in self.fields:
            self.fields["user"].queryset = AssignForm.base_fields["assignee"].queryset


@admin.register(AgentCapacity)
class AgentCapacityAdmin(CapacityAdmin):
    form = AgentCapacityForm
    list_display = ("user", "daily_capacity", "today")
    list_select_related = ("user",)
    readonly_fields = ("today",)

    def get_readonly_fields(self, request, obj=None):
        return ("user", "today") if obj is not None else ("today",)

    @admin.display(description="Today")
    def today(self, row: AgentCapacity) -> str:
        return self._today(agent=row.user) if row.pk else "-"

    def save_model(self, request, obj, form, change) -> None:
        self._set(request, obj, form, agent=obj.user)


def _share(value: float) -> str:
    return f"{value:+.1%}"


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "offer_type",
        "value",
        "min_order_value",
        "expected_response",
        "learned_response",
    )
    list_filter = ("offer_type", "is_active")
    readonly_fields = ("learned",)

    def _effect(self, offer: Offer) -> dict | None:
        model = latest_uplift_model(as_of=timezone.localdate()) if offer.pk else None
        return model.effects.get(str(offer.pk)) if model else None

    @admin.display(description="Learned response (95% interval)")
    def learned_response(self, offer: Offer) -> str:
        e = self._effect(offer)
        if not e or not e["treated"]:
            return "no outcomes yet"
        return f"{e['response']:.3f} ({e['response_low']:.3f} to {e['response_high']:.3f})"

    @admin.display(description="Prior against learned")
    def learned(self, offer: Offer) -> str:
        e = self._effect(offer)
        if e is None:
            return "nothing learned yet: learn_uplift runs with the daily campaign evaluation"
        rows = [("all customers", e)] + [(f"{t} risk", v) for t, v in e["tiers"].items()]
        # format_html escapes its arguments to text first: numbers are formatted here.
        table = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td></tr>",
            (
                (
                    name,
                    f"{v['response']:.3f} ({v['response_low']:.3f} to {v['response_high']:.3f})",
                    f"{_share(v['effect'])} ({_share(v['effect_low'])} to "
                    f"{_share(v['effect_high'])})",
                    f"{v['p_helps']:.0%}",
                    v["treated"],
                    v["control"],
                )
                for name, v in rows
            ),
        )
        return format_html(
            "<p>Prior response {}, worth {} customers. Learned from finished "
            "interventions against the control arm:</p><table><tr><th>who</th>"
            "<th>learned response (95% interval)</th><th>effect on retention</th>"
            "<th>P(helps)</th><th>treated / control</th></tr>{}</table>",
            f"{offer.expected_response:.3f}",
            offer.prior_strength,
            table,
        )


class OutcomeInline(admin.TabularInline):
    model = CampaignOutcome
    extra = 0
    can_delete = False
    fields = ("as_of", "verdict", "uplift_pp", "interval", "net", "arm_table")
    readonly_fields = fields

    @admin.display(description="uplift (percentage points)")
    def uplift_pp(self, outcome: CampaignOutcome) -> str:
        return points(outcome.uplift)

    @admin.display(description="95% interval")
    def interval(self, outcome: CampaignOutcome) -> str:
        return f"{points(outcome.ci_low)} to {points(outcome.ci_high)}"

    @admin.display(description="net incremental revenue")
    def net(self, outcome: CampaignOutcome) -> str:
        return money(outcome.net_incremental_revenue)

    @admin.display(description="arms")
    def arm_table(self, outcome: CampaignOutcome) -> str:
        return _arm_table(outcome)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _arm_table(outcome: CampaignOutcome) -> str:
    rows = [
        (
            arm,
            f"{values.get('customers', 0):,}",
            f"{values.get('retained', 0):,}",
            percent(values.get("retention"), 1),
            money(values.get("revenue")),
        )
        for arm, values in outcome.arms.items()
    ]
    return format_html(
        "<table><tr><th>arm</th><th>customers</th><th>retained</th><th>retention</th>"
        "<th>revenue</th></tr>{}</table>",
        format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        ),
    )


class CampaignForm(forms.ModelForm):
    """Channels as ordered choices and the control group as a percentage, as people
    think of them; the model keeps a JSON list and a share."""

    channels = forms.MultipleChoiceField(
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tried in this order: email, SMS, then the shop app.",
    )
    control_percent = forms.DecimalField(
        label="Control group (%)",
        min_value=Decimal("0.1"),
        max_value=Decimal("99.9"),
        decimal_places=1,
        initial=10,
        help_text="Share of targeted customers held out to measure the effect, e.g. 10",
        error_messages={
            "min_value": "The control group needs at least 0.1%% of the customers, or "
            "nothing can be measured.",
            "max_value": "The treatment group needs at least 0.1%% of the customers.",
        },
    )

    class Meta:
        model = Campaign
        fields = (
            "name",
            "goal",
            "status",
            "approval_mode",
            "target_rule",
            "target_tier",
            "target_stage",
            "include_lost",
            "offers",
            "channels",
            "control_percent",
            "exploration_share",
            "max_offers",
            "max_discount_total",
            "max_percent_off",
            "max_fixed_amount",
            "max_loyalty_points",
            "starts_on",
            "ends_on",
            "window_days",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["control_percent"] = round(self.instance.control_share * 100, 1)
        else:
            self.initial.setdefault("starts_on", timezone.localdate())

    def clean_channels(self) -> list[str]:
        chosen = set(self.cleaned_data["channels"])
        return [c for c in Channel.values if c in chosen]

    def clean(self):
        data = super().clean()
        if data.get("control_percent") is not None:
            # Set before the model's own validation, which checks both arms exist.
            self.instance.control_share = float(data["control_percent"]) / 100
        return data


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = (
        "name",
        "status",
        "approval_mode",
        "target_rule",
        "target_tier",
        "target_stage",
        "latest",
    )
    list_filter = ("status", "approval_mode")
    filter_horizontal = ("offers",)
    readonly_fields = ("outcome", "uplift", "created_at")
    inlines = [OutcomeInline]

    @admin.display(description="Targeting and keep / stop")
    def uplift(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "save the campaign first"
        report = campaign_uplift(campaign, as_of=timezone.localdate())
        verdict = format_html(
            "<p><b>{}</b> ({} customers with a closed window)</p>",
            report.sequential.verdict,
            report.finished,
        )
        if report.qini is None:
            return format_html(
                "{}<p>No Qini curve yet: no finished customers with a "
                "predicted uplift in both arms.</p>",
                verdict,
            )
        q = report.qini
        top = format_html_join(
            "",
            "<tr><td>top {}</td><td>{}</td></tr>",
            ((f"{share:.0%}", u.verdict) for share, u in q.top.items()),
        )
        return format_html(
            "{}<p>AUUC {} (95% bootstrap interval {} to {}); 0 is random "
            "targeting.</p>{}<table><tr><th>customers</th><th>uplift in retention</th></tr>"
            "{}</table>",
            verdict,
            f"{q.auuc:+.4f}",
            f"{q.auuc_low:+.4f}",
            f"{q.auuc_high:+.4f}",
            mark_safe(qini_chart(q)),  # every label escaped by core.charts
            top,
        )

    @admin.display(description="Latest outcome")
    def latest(self, campaign: Campaign) -> str:
        outcome = campaign.outcomes.first()
        return outcome.verdict if outcome else "not measured yet"

    @admin.display(description="Outcome (treatment against control)")
    def outcome(self, campaign: Campaign) -> str:
        result = campaign.outcomes.first() if campaign.pk else None
        if result is None:
            return "not measured yet: evaluate_campaigns runs daily"
        url = reverse("console:campaign", args=[campaign.pk])
        return format_html(
            "<p><b>{}</b> (as of {}; uplift {}, 95% interval {} to {})</p>{}"
            "<p>Net incremental revenue after discounts: {}</p>"
            '<p><a href="{}">Charts of this campaign in the console</a></p>',
            result.verdict,
            result.as_of,
            points(result.uplift),
            points(result.ci_low),
            points(result.ci_high),
            _arm_table(result),
            money(result.net_incremental_revenue),
            url,
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

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Intervention)
class InterventionAdmin(LargeRecordAdmin):
    list_display = (
        "id",
        "customer",
        "campaign",
        "arm",
        "state",
        "offer_type",
        "offer_value",
        "channel",
        "net_value",
        "proposed_at",
    )
    list_filter = ("state", "arm", "campaign", "offer_type", "channel")
    list_select_related = ("customer", "campaign")
    raw_id_fields = ("customer", "alert", "converted_order", "decided_by")
    search_fields = ("=customer__external_id", "=customer__email")
    inlines = [AuditInline]
    actions = ["approve_selected", "edit_offer", "dismiss_selected"]

    @admin.display(description="expected net value", ordering="expected_net_value")
    def net_value(self, intervention: Intervention) -> str:
        return money(intervention.expected_net_value)

    @admin.action(description="Approve and send selected offers", permissions=["change"])
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

    @admin.action(description="Edit the offer, then approve and send", permissions=["change"])
    def edit_offer(self, request, queryset):
        form = _ask(self, request, queryset, OfferForm, "Edit the offer and send")
        if not isinstance(form, OfferForm):
            return form
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                intervention_edit(
                    intervention_id=pk,
                    actor=_actor(request),
                    now=timezone.now(),
                    offer_type=form.cleaned_data["offer_type"],
                    offer_value=form.cleaned_data["offer_value"],
                )
                done += 1
            except (OfferOutOfLimits, AlreadyDecided) as refused:
                self.message_user(request, f"Offer #{pk} not changed: {refused}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} offers changed and approved", messages.SUCCESS)
        return None

    @admin.action(description="Dismiss selected offers", permissions=["change"])
    def dismiss_selected(self, request, queryset):
        form = _ask(self, request, queryset, DismissForm, "Dismiss offers")
        if not isinstance(form, DismissForm):
            return form
        done = interventions_dismiss(
            ids=queryset.values_list("pk", flat=True),
            actor=_actor(request),
            now=timezone.now(),
            reason=form.cleaned_data["reason"],
        )
        self.message_user(request, f"{done} offers dismissed", messages.SUCCESS)
        return None


@admin.register(Coupon)
class CouponAdmin(LargeRecordAdmin):
    list_display = ("code", "customer", "offer_type", "value", "expires_at", "redeemed_at")
    list_filter = ("offer_type",)
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "intervention", "order")
    search_fields = ("=code", "=customer__external_id")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(LargeRecordAdmin):
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
    actions = ["retry_selected"]

    @admin.action(description="Send selected failed messages again", permissions=["change"])
    def retry_selected(self, request, queryset):
        done = outbox_retry(
            message_ids=queryset.values_list("pk", flat=True),
            actor=_actor(request),
            now=timezone.now(),
        )
        self.message_user(request, f"{done} failed messages queued again", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeRecordAdmin):
    """Append-only for everyone, superusers included: only the services write it."""

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


# --- Staff accounts and API tokens ---------------------------------------------------------

admin.site.unregister(User)
admin.site.unregister(TokenProxy)  # DRF's plain-text tokens: no longer accepted by the API
admin.site.unregister(AuthToken)  # knox's own admin takes any expiry and shows the digest


@admin.register(User)
class StaffAdmin(UserAdmin):
    """Admins manage staff accounts and their roles (groups); superuser status and raw
    permissions stay with superusers, and so do superusers' own accounts, or an Admin
    could reset a superuser's password and become one."""

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, "is_superuser", "user_permissions")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


class TokenForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1, max_value=3650, help_text="The token stops working after this many days."
    )

    class Meta:
        model = AuthToken
        fields = ["user"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].initial = settings.API_TOKEN_TTL_DAYS
        self.fields["user"].queryset = User.objects.filter(is_active=True, is_staff=True)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Issue (shown once), list and revoke (delete) API tokens; only a digest is stored."""

    list_display = ("token_key", "user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("=token_key", "user__username")
    fields = ("user", "token_key", "created", "expiry")
    readonly_fields = ("token_key", "created", "expiry")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TokenForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("user", "days") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        # The form offers active staff only and at least one day, which is all the
        # service would refuse.
        created, token = api_token_create(
            user=form.cleaned_data["user"], now=timezone.now(), days=form.cleaned_data["days"]
        )
        obj.pk, obj.token_key, obj.user = created.pk, created.token_key, created.user
        self.message_user(
            request,
            f"API token for {created.user.get_username()}, valid until "
            f"{created.expiry:%Y-%m-%d}. Copy it now, it is not shown again: {token}",
            messages.WARNING,
        )
