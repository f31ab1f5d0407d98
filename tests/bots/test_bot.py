"""The Telegram bot against a local fake Bot API: cards pushed from scoring, one-tap
decisions, linking, refusals, the webhook's secret, and Telegram's rate limits."""

import datetime as dt
import itertools
import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from bots.actions import ALERTS_USAGE, HOW_TO_LINK, PAGE, SLOW_DOWN
from bots.models import ESCALATION_QUEUE, AlertCard, ChatLink, LinkCode, QueueChat
from bots.services import CODE_EXPIRED, CODE_USED, link_code_create
from bots.tasks import push_pending_cards
from bots.telegram import REPLY_LOST, SOMETHING_WRONG
from customers.privacy import customer_erase
from retention.models import (
    Alert,
    AuditEntry,
    Campaign,
    ContactPolicy,
    Coupon,
    Intervention,
    Offer,
    OutboxMessage,
    RiskRule,
)
from retention.offers import PERCENT_RANGE, POINTS_RANGE
from retention.services.alerts import alerts_escalate
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run
from tests.fakes.bot_api import button_update, message_update, send

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

AGENT_CHAT = 4242


def link(client, user, chat_id=AGENT_CHAT):
    code = link_code_create(user=user, now=timezone.now())
    assert send(client, message_update(chat_id, f"/start {code.code}")).status_code == 200


def to_do() -> list[Alert]:
    """The cases on today's to-do list: those with an offer worth making, which are the
    only ones pushed (the control arm's are watched)."""
    return list(Alert.objects.filter(planned_on__isnull=False).order_by("pk"))


def keep_only(alerts: list[Alert]) -> None:
    Alert.objects.exclude(pk__in=[a.pk for a in alerts]).delete()


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.fixture
def alerted(agent_user):
    """Ten high-risk customers, alerts assigned to the agent, offers in a campaign; no quiet
    hours, because the bot acts at the wall clock's time."""
    ContactPolicy.objects.filter(pk=1).update(quiet_start_hour=0, quiet_end_hour=0)
    RiskRule.objects.filter(name="High churn risk").update(assignee=agent_user)
    people = [customer(f"c{i}", email=f"person{i}@example.com") for i in range(10)]
    campaign(channels=["sms"], control_share=0.2)
    return scored_run([{"customer": c, "probability": 0.9} for c in people])


def test_an_alert_from_a_scoring_run_reaches_the_agents_chat_as_a_masked_card(
    telegram, client, agent_user, alerted, live_worker
):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)  # plan → signal → push task on the worker
    planned = len(to_do())
    wait_for(lambda: AlertCard.objects.filter(state="sent").count() >= planned)
    cards = [m for m in telegram.sent() if "High churn risk" in m["text"]]
    assert len(cards) == planned > 0 and all(m["chat_id"] == AGENT_CHAT for m in cards)
    text = cards[0]["text"]
    assert "p***@example.com" in text and "person" not in text.replace("p***", "")
    assert "+49***00" in text and "Churn risk 90%" in text and "no order for 74 days" in text
    labels = [
        {b["text"] for row in c["reply_markup"]["inline_keyboard"] for b in row} for c in cards
    ]
    assert all("Assign to me" in card for card in labels)
    assert all({"Approve", "Edit offer", "Dismiss"} <= card for card in labels)  # treatment
    # The control arm's cases have nothing worth doing: watched, never pushed.
    controls = Intervention.objects.filter(arm=Intervention.Arm.CONTROL)
    assert planned + controls.count() == 10
    assert not any("Offer: none, by design" in c["text"] for c in cards)


def test_a_tap_on_approve_sends_once_edits_the_card_and_a_double_tap_acts_once(
    telegram, sms_provider, client, agent_user, alerted, live_worker
):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    offer = Intervention.objects.filter(state="proposed").first()
    tap = button_update(AGENT_CHAT, f"iv:approve:{offer.pk}")
    assert send(client, tap).status_code == 200
    offer.refresh_from_db()
    assert offer.state == "queued", (offer.state, offer.block_reason, telegram.calls[-3:])
    wait_for(lambda: OutboxMessage.objects.filter(intervention=offer, state="sent").exists())
    edits = telegram.sent("editMessageText")
    assert edits and "Queued by shop-agent" in edits[-1]["text"]
    again = button_update(AGENT_CHAT, f"iv:approve:{offer.pk}")
    assert send(client, again).status_code == 200
    answers = telegram.sent("answerCallbackQuery")
    assert answers[-1]["text"].startswith("Nothing done: already sent by shop-agent")
    time.sleep(0.5)
    key = str(OutboxMessage.objects.get(intervention=offer).idempotency_key)
    assert sms_provider.requests == {key: 1}
    entry = AuditEntry.objects.get(intervention=offer, action="approved")
    assert (entry.actor, entry.via, entry.chat_id) == (agent_user, "bot", str(AGENT_CHAT))


def test_an_unlinked_chat_and_a_non_agent_can_only_read_how_to_link(
    telegram, client, agent_user, alerted
):
    after_scoring(run=alerted, now=NOW)
    offer = Intervention.objects.filter(state="proposed").first()
    send(client, message_update(999, "/alerts"))
    send(client, button_update(999, f"iv:approve:{offer.pk}"))
    assert telegram.sent()[-1]["text"] == HOW_TO_LINK
    assert telegram.sent("answerCallbackQuery")[-1]["text"] == HOW_TO_LINK[:200]

    outsider = User.objects.create_user("outsider", is_staff=True)  # no Agent/Admin role
    link(client, outsider, chat_id=555)
    assert telegram.sent()[-1]["text"] == HOW_TO_LINK
    assert not ChatLink.objects.filter(chat_id=555).exists()
    send(client, button_update(555, f"iv:approve:{offer.pk}"))
    offer.refresh_from_db()
    assert offer.state == "proposed"


def test_expired_and_reused_link_codes_are_refused(telegram, client, agent_user, settings):
    code = link_code_create(user=agent_user, now=timezone.now() - dt.timedelta(minutes=11))
    send(client, message_update(AGENT_CHAT, f"/start {code.code}"))
    assert telegram.sent()[-1]["text"] == CODE_EXPIRED
    fresh = link_code_create(user=agent_user, now=timezone.now())
    send(client, message_update(AGENT_CHAT, f"/start {fresh.code}"))
    assert telegram.sent()[-1]["text"].startswith("Linked: this chat now acts as shop-agent")
    send(client, message_update(777, f"/start {fresh.code}"))
    assert telegram.sent()[-1]["text"] == CODE_USED
    assert list(ChatLink.objects.values_list("chat_id", flat=True)) == [AGENT_CHAT]
    assert LinkCode.objects.get(pk=fresh.pk).used_at is not None
    send(client, message_update(AGENT_CHAT, "/unlink"))
    assert not ChatLink.objects.exists()
    trail = AuditEntry.objects.filter(actor=agent_user).order_by("id")
    assert [(e.action, e.chat_id) for e in trail] == [
        ("chat_linked", str(AGENT_CHAT)),
        ("chat_unlinked", str(AGENT_CHAT)),
    ]


def test_a_webhook_call_with_a_wrong_secret_is_refused_and_changes_nothing(
    telegram, client, agent_user, alerted
):
    after_scoring(run=alerted, now=NOW)
    code = link_code_create(user=agent_user, now=timezone.now())
    assert (
        send(client, message_update(AGENT_CHAT, f"/start {code.code}"), "wrong").status_code == 403
    )
    assert send(client, message_update(AGENT_CHAT, "/alerts"), secret="").status_code == 403
    assert not ChatLink.objects.exists() and telegram.calls == []


def test_a_retry_after_answer_delays_and_then_delivers(telegram, client, agent_user, alerted):
    link(client, agent_user)
    Alert.objects.all().delete()
    after_scoring(run=alerted, now=NOW)
    keep_only(to_do()[:1])
    telegram.throttle_next, telegram.retry_after = 1, 1
    started = time.monotonic()
    assert push_pending_cards() == {"sent": 1, "failed": 0}
    attempts = [t for m, p, t in telegram.calls if m == "sendMessage" and "Churn risk" in p["text"]]
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 1.0
    assert time.monotonic() - started >= 1.0
    assert AlertCard.objects.get().state == "sent"


def test_editing_an_offer_is_a_short_conversation_within_the_campaigns_limits(
    telegram, client, agent_user, alerted
):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    assert push_pending_cards()["sent"] == len(to_do())
    offer = Intervention.objects.filter(state="proposed").first()
    send(client, button_update(AGENT_CHAT, f"iv:edit:{offer.pk}"))
    kinds = telegram.sent()[-1]["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in kinds] == [
        f"iv:type:{offer.pk}:free_shipping",
        f"iv:type:{offer.pk}:percent_off",
    ]
    send(client, button_update(AGENT_CHAT, f"iv:type:{offer.pk}:percent_off"))
    assert "at most 20" in telegram.sent()[-1]["text"]
    send(client, message_update(AGENT_CHAT, "35"))
    assert "Not allowed" in telegram.sent()[-1]["text"]
    offer.refresh_from_db()
    assert offer.state == "proposed"
    send(client, message_update(AGENT_CHAT, "15%"))
    offer.refresh_from_db()
    assert offer.offer_value == 15 and offer.state in ("queued", "blocked")
    assert "15% off" in telegram.sent()[-1]["text"]
    redrawn = card_edits(telegram, offer)
    assert redrawn and "Offer: 15% off" in redrawn[-1]["text"]
    assert "by shop-agent" in redrawn[-1]["text"]


def card_edits(telegram, offer) -> list[dict]:
    """The edits of the card first posted for this offer's alert."""
    card = AlertCard.objects.get(alert=offer.alert, chat_id=AGENT_CHAT)
    return [
        e
        for e in telegram.sent("editMessageText")
        if int(e.get("message_id", 0)) == card.message_id
    ]


def test_dismissing_asks_why_closes_the_alert_and_redraws_its_card(
    telegram, client, agent_user, alerted
):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    assert push_pending_cards()["sent"] == len(to_do())
    offer = Intervention.objects.filter(state="proposed").first()
    send(client, button_update(AGENT_CHAT, f"iv:dismiss:{offer.pk}"))
    assert "Why dismiss" in telegram.sent()[-1]["text"]
    send(client, message_update(AGENT_CHAT, "spoke to her on the phone"))
    offer.refresh_from_db()
    assert offer.state == "dismissed" and offer.dismiss_reason == "spoke to her on the phone"
    assert offer.alert.state == "dismissed"
    assert telegram.sent()[-1]["text"] == f"Offer #{offer.pk} dismissed: spoke to her on the phone."
    redrawn = card_edits(telegram, offer)
    assert redrawn and "Dismissed by shop-agent" in redrawn[-1]["text"]
    assert "Approve" not in str(redrawn[-1].get("reply_markup"))


def test_commands_show_alerts_a_customer_and_todays_numbers(telegram, client, agent_user, alerted):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    send(client, message_update(AGENT_CHAT, "/alerts"))
    listing = telegram.sent()[-1]
    assert listing["text"].startswith("Open cases 1-8 of 10")
    # Today's to-do comes first, so the first page is as much of it as fits.
    assert listing["text"].count("▶ #") == min(PAGE, len(to_do()))
    assert listing["reply_markup"]["inline_keyboard"][-1][0]["callback_data"] == "al:page:2"
    send(client, message_update(AGENT_CHAT, "/customer person3@example.com"))
    view = telegram.sent()[-1]["text"]
    assert view.startswith("c3 · Test c. · p***@example.com") and "Open case" in view
    send(client, message_update(AGENT_CHAT, "/stats"))
    assert "Win back: not measured yet" in telegram.sent()[-1]["text"]


def test_cards_to_one_chat_go_a_second_apart(telegram, client, agent_user, alerted, settings):
    settings.TELEGRAM_SECONDS_PER_CHAT = 1.0
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    keep_only(to_do()[:3])
    assert push_pending_cards() == {"sent": 3, "failed": 0}
    times = [t for m, p, t in telegram.calls if m == "sendMessage" and "Churn risk" in p["text"]]
    assert len(times) == 3 and min(b - a for a, b in itertools.pairwise(times)) >= 0.95


def test_an_alert_nobody_acknowledged_is_posted_to_the_supervisors_chat(
    telegram, client, agent_user, alerted
):
    link(client, agent_user)
    QueueChat.objects.create(queue=ESCALATION_QUEUE, chat_id=9999)
    after_scoring(run=alerted, now=NOW)
    planned = to_do()
    assert push_pending_cards()["sent"] == len(planned)  # to the agent; nothing escalated yet
    first = planned[0]
    send(client, button_update(AGENT_CHAT, f"al:mine:{first.pk}"))  # acknowledged in time

    escalated = alerts_escalate(now=NOW + dt.timedelta(hours=25))
    assert sorted(escalated) == [a.pk for a in planned[1:]]  # watched cases never escalate
    assert push_pending_cards()["sent"] == len(planned) - 1
    supervisors = [m for m in telegram.sent() if int(m["chat_id"]) == 9999]
    assert len(supervisors) == len(planned) - 1
    assert all("⚠ Escalated" in m["text"] and "Assign to me" in str(m) for m in supervisors)
    assert alerts_escalate(now=NOW + dt.timedelta(hours=50)) == []
    assert push_pending_cards() == {"sent": 0, "failed": 0}


def test_an_erasure_redraws_the_customers_posted_cards_without_their_contact(
    telegram, client, agent_user, admin_user, alerted, live_worker
):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    planned = len(to_do())
    wait_for(lambda: AlertCard.objects.filter(state="sent").count() >= planned)
    card = AlertCard.objects.select_related("alert__customer").filter(state="sent").first()
    person = card.alert.customer

    customer_erase(customer=person, actor=admin_user, via="api", now=timezone.now())

    def edits():
        sent = telegram.sent("editMessageText")
        return [e for e in sent if int(e.get("message_id", 0)) == card.message_id]

    wait_for(edits)
    text = edits()[-1]["text"]
    assert person.external_id in text and "Case dismissed" in text
    assert "***" not in text and person.name.split()[0] not in text


def test_it_answers_every_bad_offer_value_with_the_allowed_range_and_keeps_asking(
    telegram, client, agent_user, alerted
):
    link(client, agent_user)
    Campaign.objects.get(name="Win back").offers.add(Offer.objects.get(offer_type="loyalty_points"))
    after_scoring(run=alerted, now=NOW)
    offer = Intervention.objects.filter(state="proposed").first()
    send(client, button_update(AGENT_CHAT, f"iv:type:{offer.pk}:loyalty_points"))
    points = POINTS_RANGE.format(limit=1000)
    assert points in telegram.sent()[-1]["text"]
    for value in ["99999999", "NaN", "Infinity", "1e9", "-5", "12.5", "lots"]:
        assert send(client, message_update(AGENT_CHAT, value)).status_code == 200
        assert telegram.sent()[-1]["text"] == f"Not allowed: {points}. Send another value."
    send(client, button_update(AGENT_CHAT, f"iv:type:{offer.pk}:percent_off"))
    for value in ["0.001", "nan", "20.5%"]:
        send(client, message_update(AGENT_CHAT, value))
        assert PERCENT_RANGE.format(limit=20) in telegram.sent()[-1]["text"]
    offer.refresh_from_db()
    assert offer.state == "proposed" and not Coupon.objects.exists()
    send(client, message_update(AGENT_CHAT, "12,5%"))
    offer.refresh_from_db()
    assert offer.offer_value == Decimal("12.5") and offer.state in ("queued", "blocked")


def test_a_failing_handler_tells_the_chat_that_nothing_was_changed(
    telegram, client, agent_user, caplog
):
    link(client, agent_user)
    # PostgreSQL refuses text with a NUL byte: the lookup raises inside the handler.
    assert send(client, message_update(AGENT_CHAT, "/customer a\x00b")).status_code == 200
    assert telegram.sent()[-1]["text"] == SOMETHING_WRONG
    assert "bot update failed" in caplog.text and "NUL" in caplog.text


def test_an_answer_telegram_refuses_is_followed_by_a_note_that_the_action_was_done(
    telegram, client, agent_user, caplog
):
    link(client, agent_user)
    telegram.refuse_next = 1  # Telegram refuses the answer to the next command
    assert send(client, message_update(AGENT_CHAT, "/stats")).status_code == 200
    assert telegram.sent()[-1]["text"] == REPLY_LOST
    assert "ReplyNotShown('Message text is empty')" in caplog.text


def test_bad_command_arguments_get_the_commands_usage(telegram, client, agent_user, alerted):
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    for text in ["/alerts ²", "/alerts two", "/alerts -1"]:
        assert send(client, message_update(AGENT_CHAT, text)).status_code == 200
        assert telegram.sent()[-1]["text"] == ALERTS_USAGE
    send(client, message_update(AGENT_CHAT, "/alerts 2"))
    assert telegram.sent()[-1]["text"].startswith("Open cases 9-10 of 10")


def away_from_a_minute_boundary(margin: float) -> None:
    """Rate limits count per clock minute: start a test that must stay in one minute early
    enough in it."""
    left = 60 - timezone.now().timestamp() % 60
    if left < margin:
        time.sleep(left + 0.05)


def test_buttons_and_text_count_against_the_chats_rate_limit(
    telegram, client, agent_user, alerted, settings
):
    settings.BOT_COMMANDS_PER_MINUTE, settings.BOT_BUTTONS_PER_MINUTE = 3, 2
    after_scoring(run=alerted, now=NOW)
    offer = Intervention.objects.filter(state="proposed").first()
    away_from_a_minute_boundary(15)
    link(client, agent_user)  # /start is the chat's first message of the minute
    for _ in range(2):
        send(client, button_update(AGENT_CHAT, f"al:show:{offer.alert_id}"))
    send(client, button_update(AGENT_CHAT, f"iv:approve:{offer.pk}"))
    assert telegram.sent("answerCallbackQuery")[-1]["text"] == SLOW_DOWN
    offer.refresh_from_db()
    assert offer.state == "proposed"
    for text in ["hello", "/help", "hello again"]:  # with /start, one too many
        send(client, message_update(AGENT_CHAT, text))
    assert telegram.sent()[-1]["text"] == SLOW_DOWN


def test_the_command_limit_is_shared_by_every_process(telegram, client, agent_user, settings):
    """Another web process (a real one: its own interpreter) uses up the chat's commands;
    this process must then refuse the next one."""
    settings.BOT_COMMANDS_PER_MINUTE = 3
    away_from_a_minute_boundary(30)
    link(client, agent_user)  # the first of three
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "BOT_COMMANDS_PER_MINUTE": "3",
    }
    script = (
        "import sys, django; django.setup()\n"
        "from django.utils import timezone\n"
        "from bots import actions\n"
        "for _ in range(2):\n"
        "    chat, now = int(sys.argv[1]), timezone.now()\n"
        "    r = actions.command(chat_id=chat, name='help', args=[], now=now)\n"
        "    print(r.message.text.splitlines()[0])\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(AGENT_CHAT)],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert other.stdout.count("Alert cards arrive here") == 2, other.stderr
    send(client, message_update(AGENT_CHAT, "/help"))
    assert telegram.sent()[-1]["text"] == SLOW_DOWN


def test_replies_and_pushed_cards_share_one_pace(telegram, client, agent_user, alerted, settings):
    settings.TELEGRAM_MESSAGES_PER_SECOND = 1
    link(client, agent_user)
    after_scoring(run=alerted, now=NOW)
    keep_only(to_do()[:1])
    before = len(telegram.calls)
    send(client, message_update(AGENT_CHAT, "/help"))
    send(client, message_update(AGENT_CHAT, "/help"))
    assert push_pending_cards() == {"sent": 1, "failed": 0}
    times = [t for m, _, t in telegram.calls[before:] if m == "sendMessage"]
    assert len(times) == 3 and times[-1] - times[0] > 0.9
