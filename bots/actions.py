"""The bot's behaviour, independent of the chat platform: a command, a button press or a
text message from a chat becomes a call of a retention service as the linked staff user,
and a :class:`Reply` saying what to show. Adapters (Telegram) only translate.

Every function is synchronous and touches the ORM; async adapters call them through
``sync_to_async``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings

from bots import selectors
from bots.callbacks import ALERT, INTERVENTION, callback, parse
from bots.cards import Button, Message, alert_card, customer_line
from bots.limits import chat_over_limit
from bots.models import ChatPrompt
from bots.services import LinkRefused, chat_link, chat_unlink, prompt_close, prompt_open
from customers.models import OfferType
from retention.messages import DISMISS_REASONS, offer_text
from retention.models import Alert, Intervention
from retention.selectors import (
    alert_for_card,
    case_offers,
    case_reasons,
    intervention_with_campaign,
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

HOW_TO_LINK = (
    "This chat is not linked to a staff account with the Agent or Admin role.\n"
    "To link it: in the admin, open Chat link codes, add one for yourself, then send "
    "/start CODE here within 10 minutes."
)
HELP = (
    "Alert cards arrive here: today's most valuable cases, within your capacity; tap "
    "Approve, Edit offer or Dismiss.\n"
    "/alerts - your open cases (and the shared queue's), today's to-do first\n"
    "/customer ID or email - a short view of a customer\n"
    "/stats - today's alerts, approvals, sends and campaign results\n"
    "/unlink - stop receiving alerts in this chat"
)
SLOW_DOWN = "Too much at once from this chat: please wait a minute."
ALERTS_USAGE = "Usage: /alerts, or /alerts PAGE such as /alerts 2"
PAGE = 8
# "12,5" is twelve and a half; "1,000" stays as sent, and is refused as no number.
DECIMAL_COMMA = re.compile(r"^(\d+),(\d{1,2})$")


@dataclass
class Reply:
    message: Message | None = None  # a new message in the chat
    edit: Message | None = None  # replaces the message whose button was pressed
    notice: str = ""  # a short answer to a button press
    # Posted cards to bring up to date, as (chat id, message id, card): every chat that
    # shows the alert sees who decided, wherever the decision was taken.
    redraw: list[tuple[int, int, Message]] = field(default_factory=list)


def _actor(user, chat_id: int) -> Actor:
    return Actor.agent(user, via="bot", chat_id=str(chat_id))


def _say(text: str, buttons=None) -> Reply:
    return Reply(message=Message(text, buttons or []))


def _too_many_messages(chat_id: int, now: dt.datetime) -> bool:
    """Commands and text, linked chat or not, counted across every process."""
    return chat_over_limit(
        chat_id=chat_id, kind="messages", limit=settings.BOT_COMMANDS_PER_MINUTE, now=now
    )


# --- Linking ---------------------------------------------------------------------------


def start(*, chat_id: int, code: str, now: dt.datetime) -> Reply:
    if _too_many_messages(chat_id, now):
        return _say(SLOW_DOWN)
    if not code:
        user = selectors.staff_for_chat(chat_id)
        return _say(f"Linked to {user.get_username()}.\n\n{HELP}" if user else HOW_TO_LINK)
    try:
        link = chat_link(code=code, chat_id=chat_id, now=now)
    except LinkRefused as refused:
        return _say(str(refused))
    if selectors.staff_for_chat(chat_id) is None:
        chat_unlink(chat_id=chat_id, now=now)
        return _say(HOW_TO_LINK)
    return _say(f"Linked: this chat now acts as {link.user.get_username()}.\n\n{HELP}")


def unlink(*, chat_id: int, now: dt.datetime) -> Reply:
    if _too_many_messages(chat_id, now):
        return _say(SLOW_DOWN)
    if chat_unlink(chat_id=chat_id, now=now):
        return _say("Unlinked. This chat no longer receives alerts or acts for anyone.")
    return _say(HOW_TO_LINK)


# --- Commands ----------------------------------------------------------------------------


def command(*, chat_id: int, name: str, args: list[str], now: dt.datetime) -> Reply:
    if _too_many_messages(chat_id, now):
        return _say(SLOW_DOWN)
    user = selectors.staff_for_chat(chat_id)
    if user is None:
        return _say(HOW_TO_LINK)
    if name == "alerts":
        page = _page(args)
        return _say(ALERTS_USAGE) if page is None else _alerts_page(user, page=page)
    if name == "customer":
        return _customer(" ".join(args))
    if name == "stats":
        return _stats(now)
    return _say(HELP)


def _page(args: list[str]) -> int | None:
    """The page /alerts asks for, 1 without an argument; None if it is no page number
    (``str.isdigit`` alone would pass "²", which ``int`` refuses)."""
    if not args:
        return 1
    if len(args) > 1 or not (args[0].isascii() and args[0].isdigit()) or int(args[0]) < 1:
        return None
    return int(args[0])


def _alerts_page(user, page: int, edit: bool = False) -> Reply:
    alerts = selectors.my_alerts(user)
    total = alerts.count()
    page = max(1, page)
    shown = list(alerts[(page - 1) * PAGE : page * PAGE])
    if not shown:
        return _say("No open cases. Well done.")
    lines = [f"Open cases {(page - 1) * PAGE + 1}-{(page - 1) * PAGE + len(shown)} of {total}:"]
    lines += [
        f"{'▶ ' if a.is_to_do else ''}#{a.pk} {a.rule.name}: {customer_line(a.customer)}"
        f" · {a.probability:.0%}" + (f" · worth {a.priority:,.2f}" if a.priority > 0 else "")
        for a in shown
    ]
    nav = []
    if page > 1:
        nav.append(Button("« Previous", callback(ALERT, "page", page - 1)))
    if page * PAGE < total:
        nav.append(Button("Next »", callback(ALERT, "page", page + 1)))
    shows = [
        [Button(f"Show #{a.pk}", callback(ALERT, "show", a.pk)) for a in shown[i : i + 4]]
        for i in range(0, len(shown), 4)
    ]
    body = Message("\n".join(lines), [*shows, nav] if nav else shows)
    return Reply(edit=body) if edit else Reply(message=body)


def _customer(query: str) -> Reply:
    if not query:
        return _say("Usage: /customer ID or email")
    customer = selectors.find_customer(query)
    if customer is None:
        return _say(f"No customer {query!r}.")
    view = selectors.customer_view(customer)
    lines = [
        customer_line(customer),
        f"{view.orders} paid orders, {view.spend:,.2f} in total"
        + (f", last on {view.last_order:%Y-%m-%d}" if view.last_order else ""),
        "Last contact: "
        + (
            f"{view.last_contact.channel} on {view.last_contact.sent_at:%Y-%m-%d}"
            if view.last_contact
            else "none"
        ),
    ]
    if view.scores:
        history = ", ".join(f"{s.run.as_of:%m-%d} {s.probability:.0%}" for s in view.scores)
        lines.append(f"Churn risk: {history}")
        lines.append("Why: " + "; ".join(view.scores[0].reasons))
    lines += [f"Open case #{a.pk}: {a.rule.name}" for a in view.open_alerts]
    buttons = [
        [Button(f"Show #{a.pk}", callback(ALERT, "show", a.pk)) for a in view.open_alerts[:4]]
    ]
    return _say("\n".join(lines), buttons if view.open_alerts else None)


def _stats(now: dt.datetime) -> Reply:
    stats = selectors.stats_today(now)
    lines = [
        f"Today: {stats.alerts_raised} alerts raised, {stats.approvals} offers approved, "
        f"{stats.sends} messages sent."
    ]
    lines += [f"{name}: {verdict}" for name, verdict in stats.campaigns] or ["No active campaigns."]
    return _say("\n".join(lines))


# --- Buttons -----------------------------------------------------------------------------


def alert_message(alert: Alert) -> Message:
    """A case's card as it stands now: for redrawing after an action."""
    return alert_messages([alert])[alert.pk]


def alert_messages(alerts: list[Alert]) -> dict[int, Message]:
    """Cards of many cases with two queries in all (the pusher draws a batch at once)."""
    ids = [alert.pk for alert in alerts]
    offers, reasons = case_offers(ids), case_reasons(ids)
    return {a.pk: alert_card(a, offers.get(a.pk), reasons.get(a.pk)) for a in alerts}


def _card(alert_id: int) -> Message:
    return alert_message(alert_for_card(alert_id))


def _redraw(done: Intervention) -> list[tuple[int, int, Message]]:
    if not done.alert_id:
        return []
    card = _card(done.alert_id)
    return [(c.chat_id, c.message_id, card) for c in selectors.cards_of_alert(done.alert_id)]


def _result(done: Intervention) -> Message:
    """The card of the decided offer's alert, or a line for offers without an alert."""
    if done.alert_id:
        return _card(done.alert_id)
    return Message(f"Offer #{done.pk} to customer {done.customer_id}: {done.get_state_display()}")


def button(*, chat_id: int, data: str, now: dt.datetime) -> Reply:
    if chat_over_limit(
        chat_id=chat_id, kind="buttons", limit=settings.BOT_BUTTONS_PER_MINUTE, now=now
    ):
        return Reply(notice=SLOW_DOWN)
    user = selectors.staff_for_chat(chat_id)
    if user is None:
        return Reply(notice=HOW_TO_LINK)
    kind, verb, arg = parse(data)
    try:
        if kind == INTERVENTION:
            return _intervention_button(user, chat_id, verb, arg, now)
        if kind == ALERT:
            return _alert_button(user, chat_id, verb, int(arg), now)
    except (Intervention.DoesNotExist, Alert.DoesNotExist, ValueError):
        return Reply(notice="That card is out of date.")
    return Reply(notice="Unknown button.")


def _alert_button(user, chat_id: int, verb: str, arg: int, now) -> Reply:
    if verb == "page":
        return _alerts_page(user, arg, edit=True)
    if verb == "show":
        return Reply(message=_card(arg))
    try:
        if verb == "mine":
            alert_assign(alert_id=arg, assignee=user, actor=_actor(user, chat_id), now=now)
            return Reply(edit=_card(arg), notice="Assigned to you.")
        if verb == "close":
            alert_close(
                alert_id=arg,
                actor=_actor(user, chat_id),
                now=now,
                dismiss=False,
                note="closed from chat",
            )
            return Reply(edit=_card(arg), notice="Alert closed.")
    except AlertClosed as closed:
        return Reply(edit=_card(arg), notice=str(closed))
    return Reply(notice="Unknown button.")


def _intervention_button(user, chat_id: int, verb: str, arg: str, now) -> Reply:
    pk, _, extra = arg.partition(":")
    intervention = intervention_with_campaign(int(pk))
    actor = _actor(user, chat_id)
    try:
        if verb == "approve":
            done = intervention_approve(intervention_id=intervention.pk, actor=actor, now=now)
            return Reply(
                edit=_result(done),
                notice=f"Approved: {done.get_state_display()}",
                redraw=_redraw(done),
            )
        if verb == "edit":
            return _choose_type(intervention)
        if verb == "type":
            return _chosen_type(user, chat_id, intervention, extra, now)
        if verb == "dismiss":
            prompt_open(
                chat_id=chat_id,
                kind=ChatPrompt.Kind.DISMISS_REASON,
                intervention_id=intervention.pk,
                now=now,
            )
            reasons = [
                [Button(text, callback(INTERVENTION, "why", intervention.pk, key))]
                for key, text in DISMISS_REASONS.items()
            ]
            return _say("Why dismiss this offer? Tap a reason or type your own.", reasons)
        if verb == "why":
            return _dismiss(user, chat_id, intervention, DISMISS_REASONS.get(extra, extra), now)
    except AlreadyDecided as decided:
        prompt_close(chat_id=chat_id)
        return Reply(edit=_result(intervention), notice=f"Nothing done: {decided}")
    return Reply(notice="Unknown button.")


def _choose_type(intervention: Intervention) -> Reply:
    offers = intervention.campaign.offers.filter(is_active=True).order_by("offer_type")
    kinds = sorted({o.offer_type for o in offers})
    rows = [
        [Button(OfferType(k).label, callback(INTERVENTION, "type", intervention.pk, k))]
        for k in kinds
    ]
    return _say("Which kind of offer?", rows)


def _chosen_type(user, chat_id: int, intervention: Intervention, offer_type: str, now) -> Reply:
    allowed = intervention.campaign.value_range(offer_type)
    if allowed is None:  # no value to ask for
        return _edit(user, chat_id, intervention, offer_type, "", now)
    prompt_open(
        chat_id=chat_id,
        kind=ChatPrompt.Kind.EDIT_AMOUNT,
        intervention_id=intervention.pk,
        offer_type=offer_type,
        now=now,
    )
    return _say(f"Send the new value ({allowed}).")


def _edit(user, chat_id, intervention, offer_type: str, value: str, now) -> Reply:
    """Edit through the service, which checks the value; a refused value leaves the
    question open, so the agent just sends another."""
    try:
        done = intervention_edit(
            intervention_id=intervention.pk,
            actor=_actor(user, chat_id),
            now=now,
            offer_type=offer_type,
            offer_value=value,
        )
    except OfferOutOfLimits as refused:
        asking = selectors.open_prompt(chat_id, now) is not None
        return _say(f"Not allowed: {refused}." + (" Send another value." if asking else ""))
    prompt_close(chat_id=chat_id)
    changed = f"Offer #{done.pk} changed to {offer_text(offer_type, done.offer_value)}"
    return Reply(
        message=Message(f"{changed}: {done.get_state_display().lower()}."),
        notice=changed,
        redraw=_redraw(done),
    )


def _dismiss(user, chat_id: int, intervention: Intervention, reason: str, now) -> Reply:
    done = intervention_dismiss(
        intervention_id=intervention.pk, actor=_actor(user, chat_id), now=now, reason=reason
    )
    prompt_close(chat_id=chat_id)
    return Reply(
        message=Message(f"Offer #{done.pk} dismissed: {reason}."),
        notice="Dismissed.",
        redraw=_redraw(done),
    )


# --- Text: answers to the bot's questions ----------------------------------------------------


def text(*, chat_id: int, body: str, now: dt.datetime) -> Reply:
    if _too_many_messages(chat_id, now):
        return _say(SLOW_DOWN)
    user = selectors.staff_for_chat(chat_id)
    if user is None:
        return _say(HOW_TO_LINK)
    prompt = selectors.open_prompt(chat_id, now)
    if prompt is None:
        return _say(HELP)
    intervention = intervention_with_campaign(prompt.intervention_id)
    try:
        if prompt.kind == ChatPrompt.Kind.DISMISS_REASON:
            return _dismiss(user, chat_id, intervention, body.strip()[:200], now)
        value = DECIMAL_COMMA.sub(r"\1.\2", body.strip().removesuffix("%").strip())
        return _edit(user, chat_id, intervention, prompt.offer_type, value, now)
    except AlreadyDecided as decided:
        prompt_close(chat_id=chat_id)
        return _say(f"Nothing done: {decided}")
