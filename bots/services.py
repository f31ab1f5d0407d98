"""Writes of the chat surface: linking chats to staff, and the cards queued for chats."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Exists, F, Q, QuerySet

from bots.models import ESCALATION_QUEUE, LINK_CODE_TTL, AlertCard, ChatLink, ChatPrompt, LinkCode
from core.models import JobLock
from retention.models import Alert
from retention.services.audit import Action, Actor, audit_write

CODE_UNKNOWN = "That code is not valid. Create a new one in the admin (Chat link codes)."
CODE_USED = "That code was already used. Create a new one in the admin."
CODE_EXPIRED = "That code expired (codes last 10 minutes). Create a new one in the admin."
CARD_UNCERTAIN = (
    "may have been posted: the pusher stopped while posting it, and Telegram cannot "
    "recognise a repeat, so it was not posted again"
)
# The job lease of the one card pusher; its token is also the claim token on its cards.
PUSH_LEASE = "bots.push"


class LinkRefused(Exception):
    pass


def link_code_create(*, user, now: dt.datetime) -> LinkCode:
    return LinkCode.objects.create(user=user, created_at=now, expires_at=now + LINK_CODE_TTL)


def chat_link(*, code: str, chat_id: int, now: dt.datetime, platform: str = "telegram") -> ChatLink:
    """Link ``chat_id`` to the staff user who made ``code`` (replacing any earlier link of
    that chat or that user); a refused code raises :class:`LinkRefused` saying why."""
    with transaction.atomic():
        found = LinkCode.objects.select_for_update().filter(code=code.strip().upper()).first()
        if found is None:
            raise LinkRefused(CODE_UNKNOWN)
        if found.used_at is not None:
            raise LinkRefused(CODE_USED)
        if now > found.expires_at:
            raise LinkRefused(CODE_EXPIRED)
        found.used_at = now
        found.save(update_fields=["used_at"])
        ChatLink.objects.filter(platform=platform, chat_id=chat_id).delete()
        ChatLink.objects.filter(platform=platform, user=found.user).delete()
        audit_write(
            actor=Actor.agent(found.user, via="bot", chat_id=chat_id),
            action=Action.CHAT_LINKED,
            at=now,
        )
        return ChatLink.objects.create(
            user=found.user, platform=platform, chat_id=chat_id, linked_at=now
        )


def chat_unlink(*, chat_id: int, now: dt.datetime, platform: str = "telegram") -> bool:
    link = ChatLink.objects.filter(platform=platform, chat_id=chat_id).first()
    if link is None:
        return False
    audit_write(
        actor=Actor.agent(link.user, via="bot", chat_id=chat_id),
        action=Action.CHAT_UNLINKED,
        at=now,
    )
    link.delete()
    return True


def cards_queue(*, now: dt.datetime, platform: str = "telegram") -> int:
    """A pending card for every case on a to-do list not yet shown in its chat: the
    assignee's linked chat, else the chat of the case's queue; and for escalated cases,
    also the escalation queue's chat. Watched cases are not pushed: they wait for
    capacity. Each card carries its case's priority, the order the pusher posts in. One
    INSERT … SELECT.

    Cards already there are left out by NOT EXISTS, read from the snapshot, before ON
    CONFLICT sees them: ON CONFLICT waits for any transaction that has updated the
    conflicting row, so a pusher frozen inside its claim's transaction held up every other
    pusher's queueing, and with it the takeover. ON CONFLICT stays for two pushers queueing
    the same new card at once."""
    waiting = ", ".join(["%s"] * len(Alert.WAITING_STATES))
    to_do = f"a.state IN ({waiting}) AND a.planned_on IS NOT NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO bots_alertcard
                (alert_id, priority, platform, chat_id, state, created_at, attempts,
                 last_error, claim_token)
            SELECT n.alert_id, n.priority, n.platform, n.chat_id, 'pending', %s, 0, '', ''
            FROM (
                SELECT a.id AS alert_id, a.priority, %s AS platform,
                       COALESCE(l.chat_id, q.chat_id) AS chat_id
                FROM retention_alert a
                LEFT JOIN bots_chatlink l ON l.user_id = a.assigned_to_id AND l.platform = %s
                LEFT JOIN bots_queuechat q ON q.queue = a.queue AND q.platform = %s
                WHERE {to_do} AND COALESCE(l.chat_id, q.chat_id) IS NOT NULL
                UNION
                SELECT a.id, a.priority, %s, e.chat_id
                FROM retention_alert a
                JOIN bots_queuechat e ON e.queue = %s AND e.platform = %s
                WHERE {to_do} AND a.escalated_at IS NOT NULL
            ) n
            WHERE NOT EXISTS (
                SELECT 1 FROM bots_alertcard c
                WHERE c.alert_id = n.alert_id AND c.platform = n.platform
                  AND c.chat_id = n.chat_id
            )
            ON CONFLICT DO NOTHING
            """,
            [
                now,
                *(platform, platform, platform, *Alert.WAITING_STATES),
                *(platform, ESCALATION_QUEUE, platform, *Alert.WAITING_STATES),
            ],
        )
        return cursor.rowcount


def cards_claim(*, token: str, limit: int, now: dt.datetime, until: dt.datetime) -> list[int]:
    """Claim up to ``limit`` pending cards for the pusher holding ``token`` until ``until``,
    highest priority first: unclaimed ones and ones whose claim ran out, locked with SKIP
    LOCKED so two pushers never claim the same card. A card whose pusher stopped while
    posting it is failed as uncertain rather than posted again: Telegram cannot recognise
    a repeat. Returns the claimed ids."""
    with transaction.atomic():
        rows = list(
            AlertCard.objects.filter(state=AlertCard.State.PENDING)
            .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
            .select_for_update(skip_locked=True)
            .order_by("-priority", "created_at", "pk")
            .values_list("pk", "send_started_at")[:limit]
        )
        stranded = [pk for pk, started in rows if started is not None]
        claimed = [pk for pk, started in rows if started is None]
        AlertCard.objects.filter(pk__in=stranded).update(
            state=AlertCard.State.FAILED, last_error=CARD_UNCERTAIN, claimed_until=None
        )
        AlertCard.objects.filter(pk__in=claimed).update(claim_token=token, claimed_until=until)
    return claimed


def cards_renew(*, token: str, until: dt.datetime) -> int:
    """Extend the claim on the cards this pusher still holds."""
    return AlertCard.objects.filter(claim_token=token, state=AlertCard.State.PENDING).update(
        claimed_until=until
    )


def cards_release(*, token: str) -> None:
    """Give back the cards a pusher claimed but did not post, for the next pusher."""
    _claimed(token).filter(send_started_at=None).update(claim_token="", claimed_until=None)


def _claimed(token: str, card_id: int | None = None) -> QuerySet[AlertCard]:
    mine = AlertCard.objects.filter(claim_token=token, state=AlertCard.State.PENDING)
    return mine if card_id is None else mine.filter(pk=card_id)


def card_start(*, card_id: int, token: str, now: dt.datetime) -> bool:
    """Mark the card in flight right before posting it; False (post nothing) unless the card
    is still ours and our pusher still holds the push lease, whose token we carry."""
    still_pushing = JobLock.objects.filter(name=PUSH_LEASE, token=token)
    return bool(
        _claimed(token, card_id)
        .filter(Exists(still_pushing))
        .update(send_started_at=now, attempts=F("attempts") + 1)
    )


def card_sent(*, card_id: int, token: str, message_id: int, now: dt.datetime) -> None:
    _claimed(token, card_id).update(
        state=AlertCard.State.SENT,
        message_id=message_id,
        sent_at=now,
        last_error="",
        claimed_until=None,
    )


def card_failed(*, card_id: int, token: str, error: str) -> None:
    _claimed(token, card_id).update(
        state=AlertCard.State.FAILED, last_error=error, claimed_until=None
    )


def card_unsent(*, card_id: int, token: str) -> None:
    """The platform could not be reached: the card stays pending, for the next pusher."""
    _claimed(token, card_id).update(send_started_at=None, claim_token="", claimed_until=None)


def prompt_open(
    *,
    chat_id: int,
    kind: str,
    intervention_id: int,
    now: dt.datetime,
    offer_type: str = "",
    card_message_id: int | None = None,
) -> ChatPrompt:
    prompt, _ = ChatPrompt.objects.update_or_create(
        platform="telegram",
        chat_id=chat_id,
        defaults={
            "kind": kind,
            "intervention_id": intervention_id,
            "offer_type": offer_type,
            "card_message_id": card_message_id,
            "expires_at": now + dt.timedelta(minutes=15),
        },
    )
    return prompt


def prompt_close(*, chat_id: int) -> None:
    ChatPrompt.objects.filter(platform="telegram", chat_id=chat_id).delete()
