"""The console's pages and buttons. Each view is wrapped in the role it needs
(``console.access``), reads through selectors, acts through the same services as the bot
and the admin, and renders a template; buttons answer htmx with the part of the page that
changed and plain form posts with a redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from console.access import admin_required, staff_required
from console.forms import DismissForm, EditOfferForm, TodayFilterForm
from core import charts
from core.formatting import money, percent, points
from core.permissions import in_roles
from core.roles import ADMIN
from customers.models import Customer
from customers.privacy import mask_email, mask_phone
from ml.selectors import drift_history, version_for_display, versions_for_display
from ml.services import promote, rollback
from retention.models import SHARED_QUEUE, Alert, Campaign, Intervention
from retention.selectors import (
    CaseFilters,
    campaign_list,
    campaign_report,
    case_card,
    champion_history,
    customer_story,
    overview,
    today_choices,
    today_list,
)
from retention.services.alerts import AlertClosed, alert_assign, alert_close
from retention.services.audit import Actor
from retention.services.interventions import (
    AlreadyDecided,
    OfferOutOfLimits,
    intervention_approve,
    intervention_dismiss,
    intervention_edit,
)


def _actor(request: HttpRequest) -> Actor:
    return Actor.agent(request.user, via="console")


def _nav(request: HttpRequest) -> dict[str, object]:
    return {"is_admin": in_roles(request.user, ADMIN)}


# --- Pages -----------------------------------------------------------------------------


@require_GET
@staff_required
def today(request: HttpRequest) -> HttpResponse:
    """My cases and my team's queue (the one chosen, else the shared one): to do today
    within capacity, then the most valuable cases watched beyond it, with counts."""
    form = TodayFilterForm(request.GET or None, choices=today_choices())
    form.is_valid()  # a filter that does not validate is left out; the others apply
    data = getattr(form, "cleaned_data", {})
    filters = CaseFilters(
        tier=data.get("tier") or "",
        stage=data.get("stage") or "",
        rule=data.get("rule"),
        campaign=data.get("campaign"),
    )
    page = data.get("page") or 1
    day = timezone.localdate()
    return render(
        request,
        "console/today.html",
        {
            **_nav(request),
            "mine": today_list(day=day, agent=request.user, filters=filters),
            "team": today_list(
                day=day, queue=data.get("queue") or SHARED_QUEUE, filters=filters, page=page
            ),
            "form": form,
            "page": page,
            "dismiss_form": DismissForm(),
        },
    )


@require_GET
@staff_required
def customer(request: HttpRequest, external_id: str) -> HttpResponse:
    person = get_object_or_404(Customer, external_id=external_id)
    return render(request, "console/customer.html", _customer_context(request, person))


def _customer_context(request: HttpRequest, person: Customer, **extra) -> dict[str, object]:
    story = customer_story(person)
    offer = story.open_offer
    history = [(s.run.as_of, s.probability) for s in story.history]
    chart = ""
    if history:
        chart = charts.line_chart(
            [charts.Series("churn risk", [(d.toordinal(), p) for d, p in history])],
            title="Churn risk over time",
            x_label="scoring day",
            y_label="churn probability",
            y_range=(0.0, 1.0),
            y_format=charts.percent,
            x_ticks=_date_ticks([d for d, _ in history]),
            markers=True,
        )
    reasons_chart = ""
    weighted = [r for r in (story.score.reasons if story.score else []) if isinstance(r, dict)]
    if weighted:
        reasons_chart = charts.bar_chart(
            [(r["text"], float(r["weight"])) for r in weighted], title="Why: each reason's weight"
        )
    return {
        **_nav(request),
        "story": story,
        "person": person,
        "show_contact": in_roles(request.user, ADMIN),
        "masked_email": mask_email(person.email),
        "masked_phone": mask_phone(person.phone),
        "offer": offer,
        "edit_form": extra.pop("edit_form", None)
        or (EditOfferForm(campaign=offer.campaign) if offer else None),
        "dismiss_form": extra.pop("dismiss_form", None) or DismissForm(),
        "history_chart": chart,
        "reasons": [r if isinstance(r, str) else r["text"] for r in story.score.reasons]
        if story.score
        else [],
        "reasons_chart": reasons_chart,
        **extra,
    }


def _date_ticks(days) -> list[tuple[float, str]]:
    if not days:
        return []
    step = max(1, len(days) // 6)
    return [(d.toordinal(), f"{d:%b %d}") for d in days[::step]]


@require_GET
@admin_required
def overview_page(request: HttpRequest) -> HttpResponse:
    data = overview(now=timezone.now())
    tier_order = ["high", "medium", "low"]
    tiers_chart = charts.bar_chart(
        [(t, float(data.tiers.get(t, 0))) for t in tier_order if t in data.tiers],
        title=f"Customers by risk tier (scoring of {data.run_as_of})",
    )
    value_chart = ""
    if data.value_at_risk:
        value_chart = charts.line_chart(
            [charts.Series("value at risk", [(d.toordinal(), v) for d, v in data.value_at_risk])],
            title="Value at risk over time",
            x_label="scoring day",
            y_label="value at risk",
            y_format=lambda v: money(v, places=0),
            x_ticks=_date_ticks([d for d, _ in data.value_at_risk]),
            markers=True,
        )
    raised_chart = charts.column_chart(
        [(f"{day:%m-%d}", [per.get(r, 0) for r in data.rules]) for day, per in data.raised],
        series_names=data.rules,
        title=f"Alerts raised per day by rule (last {data.days} days)",
        y_label="alerts",
    )
    handled_chart = charts.column_chart(
        [(f"{day:%m-%d}", [n]) for day, n in data.handled],
        series_names=["decisions"],
        title=f"Alerts and offers handled by staff per day (last {data.days} days)",
        y_label="decisions",
    )
    states = ["pending", "sending", "sent", "delivered", "failed"]
    channel_chart = charts.column_chart(
        [(channel, [per.get(s, 0) for s in states]) for channel, per in data.messages],
        series_names=states,
        title=f"Messages per channel (last {data.days} days)",
        y_label="messages",
    )
    return render(
        request,
        "console/overview.html",
        {
            **_nav(request),
            "data": data,
            "tiers_chart": tiers_chart,
            "value_chart": value_chart,
            "raised_chart": raised_chart,
            "handled_chart": handled_chart,
            "channel_chart": channel_chart,
            "failed": sum(per.get("failed", 0) for _, per in data.messages),
        },
    )


@require_GET
@staff_required
def campaigns(request: HttpRequest) -> HttpResponse:
    return render(
        request, "console/campaigns.html", {**_nav(request), "campaigns": campaign_list()}
    )


@require_GET
@staff_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = campaign_report(get_object_or_404(Campaign, pk=pk))
    measured = [o for o in report.outcomes if o.arms]
    retention_chart = uplift_chart = ""
    if measured:
        ticks = _date_ticks([o.as_of for o in measured])
        retention_chart = charts.line_chart(
            [
                charts.Series(
                    arm,
                    [
                        (o.as_of.toordinal(), o.arms[arm]["retention"])
                        for o in measured
                        if o.arms.get(arm, {}).get("retention") is not None
                    ],
                )
                for arm in ("treatment", "control")
            ],
            title="Retention by arm over time",
            x_label="measured on",
            y_label="retained (ordered in the window)",
            y_format=charts.percent,
            x_ticks=ticks,
            markers=True,
        )
        with_ci = [o for o in measured if o.uplift is not None]
        if with_ci:
            uplift_chart = charts.line_chart(
                [charts.Series("uplift", [(o.as_of.toordinal(), o.uplift) for o in with_ci])],
                title="Uplift (treatment minus control) with its 95% interval",
                description="Uplift in percentage points over time; "
                + "; ".join(
                    f"{o.as_of}: {points(o.uplift)} ({points(o.ci_low)} to {points(o.ci_high)})"
                    for o in with_ci
                ),
                x_label="measured on",
                y_label="uplift (percentage points)",
                y_format=lambda v: f"{v * 100:+.0f} pp",
                x_ticks=ticks,
                band=[
                    (o.as_of.toordinal(), o.ci_low, o.ci_high)
                    for o in with_ci
                    if o.ci_low is not None and o.ci_high is not None
                ],
                band_name="95% interval",
                hlines=[(0.0, "no effect")],
                markers=True,
            )
    funnel_chart = charts.bar_chart(
        [(label, float(n)) for label, n in report.funnel if n],
        title="Offers by state",
        value_format=lambda v: f"{v:,.0f}",
    )
    latest = report.latest
    return render(
        request,
        "console/campaign.html",
        {
            **_nav(request),
            "report": report,
            "campaign": report.campaign,
            "latest": latest,
            "arms": _arm_rows(latest),
            "retention_chart": retention_chart,
            "uplift_chart": uplift_chart,
            "funnel_chart": funnel_chart,
        },
    )


def _arm_rows(outcome) -> list[dict[str, object]]:
    if outcome is None:
        return []
    return [
        {
            "arm": arm,
            "customers": values.get("customers", 0),
            "retained": values.get("retained", 0),
            "retention": percent(values.get("retention"), 1),
            "revenue": money(values.get("revenue")),
            "discount": money(values.get("discount_cost")) if arm == "treatment" else "-",
        }
        for arm, values in outcome.arms.items()
    ]


@require_GET
@admin_required
def models(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("version", "")
    chosen = version_for_display(int(raw) if raw.isascii() and raw.isdigit() else None)
    if raw and chosen is None:
        raise Http404("no such model version")
    roc = calibration = ""
    if chosen is not None:
        metrics = chosen.metrics or {}
        if metrics.get("roc"):
            roc = charts.roc_chart([tuple(p) for p in metrics["roc"]], auc=metrics["auc"])
        if metrics.get("calibration"):
            calibration = charts.calibration_chart(metrics["calibration"])
    runs = drift_history()
    drift_chart = top_drift = ""
    flagged = [r for r in runs if r.max_psi is not None]
    if flagged:
        drift_chart = charts.line_chart(
            [charts.Series("largest PSI", [(r.as_of.toordinal(), r.max_psi) for r in flagged])],
            title="Largest feature drift (PSI) per scoring run",
            x_label="scoring day",
            y_label="PSI",
            x_ticks=_date_ticks([r.as_of for r in flagged]),
            hlines=[(0.1, "0.1 watch"), (0.25, "0.25 drift")],
            markers=True,
        )
    latest = runs[-1] if runs else None
    if latest is not None and latest.drift:
        ranked = sorted(latest.drift.items(), key=lambda kv: -kv[1])[:10]
        top_drift = charts.bar_chart(
            [(name, float(value)) for name, value in ranked],
            title=f"Most drifting features on {latest.as_of}",
            vlines=[(0.1, "0.1"), (0.25, "0.25")],
            highlight=lambda v: v > 0.25,
            value_format=lambda v: f"{v:.2f}",
        )
    return render(
        request,
        "console/models.html",
        {
            **_nav(request),
            "versions": versions_for_display(),
            "chosen": chosen,
            "roc_chart": roc,
            "calibration_chart": calibration,
            "drift_chart": drift_chart,
            "top_drift_chart": top_drift,
            "latest_run": latest,
            "history": champion_history(),
        },
    )


# --- Buttons ---------------------------------------------------------------------------
#
# The same services as the bot's buttons: an offer is approved, edited or dismissed
# (which closes its case), a case is taken or, without an offer to decide, dismissed.


def _done(
    request: HttpRequest, *, customer_id: int, case_id: int | None, notice: str, error: bool = False
):
    """htmx: the changed part (the case's card, or the customer page's offer panel);
    otherwise back where the button was, with the notice."""
    if request.htmx and request.POST.get("view") == "customer":
        person = Customer.objects.get(pk=customer_id)
        context = _customer_context(request, person, notice=notice, error=error)
        return render(request, "console/_offer_panel.html", context)
    if request.htmx and case_id is not None:
        context = {
            **_nav(request),
            "card": case_card(alert_id=case_id),
            "notice": notice,
            "error": error,
            "dismiss_form": DismissForm(),
        }
        return render(request, "console/_card.html", context)
    (messages.error if error else messages.success)(request, notice)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = reverse("console:today")
    return redirect(target)


def _offer(pk: int) -> Intervention:
    return get_object_or_404(Intervention.objects.select_related("campaign"), pk=pk)


@require_POST
@staff_required
def offer_approve(request: HttpRequest, pk: int) -> HttpResponse:
    offer = _offer(pk)
    done = {"customer_id": offer.customer_id, "case_id": offer.alert_id}
    try:
        approved = intervention_approve(
            intervention_id=pk, actor=_actor(request), now=timezone.now()
        )
    except AlreadyDecided as decided:
        return _done(request, **done, notice=f"Nothing done: {decided}", error=True)
    return _done(request, **done, notice=f"Approved: {approved.get_state_display().lower()}")


@require_POST
@staff_required
def offer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    offer = _offer(pk)
    done = {"customer_id": offer.customer_id, "case_id": offer.alert_id}
    form = EditOfferForm(request.POST, campaign=offer.campaign)
    if not form.is_valid():
        return _done(request, **done, notice="Not changed: choose a kind of offer.", error=True)
    try:
        edited = intervention_edit(
            intervention_id=pk,
            actor=_actor(request),
            now=timezone.now(),
            offer_type=form.cleaned_data["offer_type"],
            offer_value=form.cleaned_data["offer_value"],
        )
    except (OfferOutOfLimits, AlreadyDecided) as refused:
        return _done(request, **done, notice=f"Not allowed: {refused}.", error=True)
    return _done(request, **done, notice=f"Changed and approved: {edited.get_state_display()}")


@require_POST
@staff_required
def offer_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    offer = _offer(pk)
    done = {"customer_id": offer.customer_id, "case_id": offer.alert_id}
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _done(request, **done, notice=" ".join(form.non_field_errors()), error=True)
    why = form.cleaned_data["why"]
    try:
        intervention_dismiss(
            intervention_id=pk, actor=_actor(request), now=timezone.now(), reason=why
        )
    except AlreadyDecided as decided:
        return _done(request, **done, notice=f"Nothing done: {decided}", error=True)
    return _done(request, **done, notice=f"Dismissed: {why}")


def _case(pk: int) -> Alert:
    return get_object_or_404(Alert, pk=pk)


@require_POST
@staff_required
def case_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    """A case without an offer to decide: nothing to do for it (with an offer, the
    offer is dismissed instead, which closes the case)."""
    case = _case(pk)
    done = {"customer_id": case.customer_id, "case_id": case.pk}
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _done(request, **done, notice=" ".join(form.non_field_errors()), error=True)
    why = form.cleaned_data["why"]
    try:
        alert_close(alert_id=pk, actor=_actor(request), now=timezone.now(), dismiss=True, note=why)
    except AlertClosed as closed:
        return _done(request, **done, notice=f"Nothing done: {closed}", error=True)
    return _done(request, **done, notice=f"Dismissed: {why}")


@require_POST
@staff_required
def case_assign_me(request: HttpRequest, pk: int) -> HttpResponse:
    case = _case(pk)
    done = {"customer_id": case.customer_id, "case_id": case.pk}
    try:
        alert_assign(alert_id=pk, assignee=request.user, actor=_actor(request), now=timezone.now())
    except AlertClosed as closed:
        return _done(request, **done, notice=f"Nothing done: {closed}", error=True)
    return _done(request, **done, notice="Assigned to you.")


@require_POST
@admin_required
def model_promote(request: HttpRequest, pk: int) -> HttpResponse:
    version = version_for_display(pk)
    if version is None:
        raise Http404("no such model version")
    promote(version=version, user=request.user, via="console")
    messages.success(request, f"#{version.pk} {version.algorithm} is now the champion.")
    return redirect(f"{reverse('console:models')}?version={version.pk}")


@require_POST
@admin_required
def model_rollback(request: HttpRequest) -> HttpResponse:
    try:
        version = rollback(user=request.user, via="console")
    except ValueError as refused:
        messages.error(request, f"Nothing rolled back: {refused}.")
        return redirect("console:models")
    messages.success(request, f"#{version.pk} {version.algorithm} is the champion again.")
    return redirect(f"{reverse('console:models')}?version={version.pk}")
