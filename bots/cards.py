"""What the bot shows, independent of the chat platform: messages with button rows, and
the case card. Contact details are masked: chats are not a place for personal data."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from django.conf import settings

from bots.callbacks import ALERT, INTERVENTION, callback
from customers.privacy import mask_email, mask_phone
from retention.messages import offer_text
from retention.models import Alert, CaseReason, Intervention

TIER_MARK = {"high": "🔴", "medium": "🟠", "low": "🟢"}


@dataclass(frozen=True)
class Button:
    text: str
    data: str = ""  # callback data, e.g. "iv:approve:42"
    url: str = ""


@dataclass
class Message:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)


def short_name(name: str) -> str:
    parts = name.split()
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else f"{parts[0]} {parts[-1][:1]}."


def customer_line(customer) -> str:
    bits = [customer.external_id, short_name(customer.name)]
    bits += [mask_email(customer.email), mask_phone(customer.phone)]
    return " · ".join(b for b in bits if b)


def console_url(alert: Alert) -> str:
    """A link to the alert's customer in the console; none for a local address, which Telegram
    refuses in buttons (and which no phone could open anyway)."""
    base = settings.CONSOLE_BASE_URL.rstrip("/")
    if not base or "://127.0.0.1" in base or "://localhost" in base:
        return ""
    return f"{base}/console/customers/{quote(alert.customer.external_id, safe='')}/"


def _offer_line(intervention: Intervention | None) -> str:
    if intervention is None:
        return "Offer: none proposed (no campaign targets this rule)"
    if intervention.arm == Intervention.Arm.CONTROL:
        return "Offer: none, by design (control group of " + intervention.campaign.name + ")"
    channel = intervention.channel or "/".join(intervention.campaign.channels)
    return f"Offer: {offer_text(intervention.offer_type, intervention.offer_value)} via {channel}"


def _outcome_line(intervention: Intervention | None) -> str:
    if intervention is None or intervention.state in (
        Intervention.State.PROPOSED,
        Intervention.State.HELD_OUT,
    ):
        return ""
    who = intervention.decided_by.get_username() if intervention.decided_by else "automatic"
    when = f"{intervention.decided_at:%Y-%m-%d %H:%M}" if intervention.decided_at else ""
    detail = {
        Intervention.State.BLOCKED: f" ({intervention.block_reason})",
        Intervention.State.DISMISSED: f" ({intervention.dismiss_reason})",
        Intervention.State.QUEUED: f" via {intervention.channel}",
    }.get(intervention.state, "")
    return f"{intervention.get_state_display()} by {who} {when}{detail}".strip()


def _reason_lines(reasons: list[CaseReason]) -> list[str]:
    """Every rule that matched, with what it means: the case lists all of them."""
    lines = []
    for reason in reasons:
        meaning = reason.rule.description.strip()
        lines.append(f"• {reason.rule.name}" + (f": {meaning}" if meaning else ""))
    return lines


def alert_card(
    alert: Alert, intervention: Intervention | None, reasons: list[CaseReason] | None = None
) -> Message:
    """A case as its chat card: title, customer, risk, stage and what acting is worth,
    every rule that put the customer here, the model's reasons and the offer."""
    why = "; ".join(alert.reasons[:3]) or "-"
    worth = f" · worth {alert.priority:,.2f}" if alert.priority > 0 else ""
    stage = f" · {alert.get_stage_display().lower()}" if alert.stage else ""
    lines = [
        f"{TIER_MARK.get(alert.tier, '')} {alert.rule.name} · {alert.get_severity_display()}",
        customer_line(alert.customer),
        f"Churn risk {alert.probability:.0%} · value at risk {alert.value_at_risk:,.0f}"
        + stage
        + worth,
        *_reason_lines(reasons or []),
        f"Why: {why}",
        _offer_line(intervention),
    ]
    outcome = _outcome_line(intervention)
    if outcome:
        lines.append(f"✔ {outcome}")
    if alert.state not in Alert.OPEN_STATES:
        lines.append(f"Case {alert.get_state_display().lower()}")
    else:
        if alert.escalated_at and alert.state == Alert.State.OPEN:
            lines.append(f"⚠ Escalated {alert.escalated_at:%Y-%m-%d %H:%M}: nobody acknowledged it")
        if alert.assigned_to_id:
            lines.append(f"Assigned to {alert.assigned_to.get_username()}")
    buttons: list[list[Button]] = []
    undecided = intervention is not None and intervention.state == Intervention.State.PROPOSED
    if undecided:
        buttons.append(
            [
                Button("Approve", callback(INTERVENTION, "approve", intervention.pk)),
                Button("Edit offer", callback(INTERVENTION, "edit", intervention.pk)),
                Button("Dismiss", callback(INTERVENTION, "dismiss", intervention.pk)),
            ]
        )
    if alert.state in Alert.OPEN_STATES:
        row = [Button("Assign to me", callback(ALERT, "mine", alert.pk))]
        if not undecided:
            row.append(Button("Close alert", callback(ALERT, "close", alert.pk)))
        if console_url(alert):
            row.append(Button("Open in console", url=console_url(alert)))
        buttons.append(row)
    return Message("\n".join(lines), buttons)
