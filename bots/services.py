"""Writes of the chat surface: linking chats to staff, and the cards queued for chats."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from bots.models import ESCALATION_QUEUE, LINK_CODE_TTL, AlertCard, ChatLink, ChatPrompt, LinkCode
from retention.models import Alert
from retention.services.audit import Actor, audit_record

CODE_UNKNOWN = "That code is not valid. Create a new one in the admin (Chat link codes)."
CODE_USED = "That code was already used. Create a new one in the admin."
CODE_EXPIRED = "That code expired (codes last 10 minutes). Create a new one in the admin."


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
        audit_record(
            actor=Actor.agent(found.user, via="bot", chat_id=chat_id), action="chat_linked", at=now
        )
        return ChatLink.objects.create(
            user=found.user, platform=platform, chat_id=chat_id, linked_at=now
        )


def chat_unlink(*, chat_id: int, now: dt.datetime, platform: str = "telegram") -> bool:
    link = ChatLink.objects.filter(platform=platform, chat_id=chat_id).first()
    if link is None:
        return False
    audit_record(
        actor=Actor.agent(link.user, via="bot", chat_id=chat_id), action="chat_unlinked", at=now
    )
    link.delete()
    return True


def cards_queue(*, now: dt.datetime, platform: str = "telegram") -> int:
    """A pending card for every open alert not yet shown in its chat: the assignee's
    linked chat, else the chat of the alert's queue; and for escalated alerts, also the
    escalation queue's chat. One INSERT … SELECT."""
    open_states = ", ".join(["%s"] * len(Alert.OPEN_STATES))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO bots_alertcard
                (alert_id, platform, chat_id, state, created_at, attempts, last_error)
            SELECT a.id, %s, COALESCE(l.chat_id, q.chat_id), 'pending', %s, 0, ''
            FROM retention_alert a
            LEFT JOIN bots_chatlink l ON l.user_id = a.assigned_to_id AND l.platform = %s
            LEFT JOIN bots_queuechat q ON q.queue = a.queue AND q.platform = %s
            WHERE a.state IN ({open_states})
              AND COALESCE(l.chat_id, q.chat_id) IS NOT NULL
            UNION
            SELECT a.id, %s, e.chat_id, 'pending', %s, 0, ''
            FROM retention_alert a
            JOIN bots_queuechat e ON e.queue = %s AND e.platform = %s
            WHERE a.state IN ({open_states}) AND a.escalated_at IS NOT NULL
            ON CONFLICT DO NOTHING
            """,
            [
                *(platform, now, platform, platform, *Alert.OPEN_STATES),
                *(platform, now, ESCALATION_QUEUE, platform, *Alert.OPEN_STATES),
            ],
        )
        return cursor.rowcount


def card_sent(*, card_id: int, message_id: int, now: dt.datetime) -> None:
    AlertCard.objects.filter(pk=card_id).update(
        state=AlertCard.State.SENT, message_id=message_id, sent_at=now, last_error=""
    )


def card_failed(*, card_id: int, error: str) -> None:
    AlertCard.objects.filter(pk=card_id).update(state=AlertCard.State.FAILED, last_error=error)


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
