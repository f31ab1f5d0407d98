"""Who is behind a chat, and which alert cards went where.

A chat is linked to one staff account with a one-time code the agent makes in the admin
(or console); cards remember their chat and message so a decision taken anywhere can edit
the card that shows it.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

LINK_CODE_TTL = dt.timedelta(minutes=10)


def _link_code() -> str:
    return secrets.token_hex(4).upper()


class ChatLink(models.Model):
    """A chat in which a staff user acts; one chat per user and platform."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=16, default="telegram")
    chat_id = models.BigIntegerField()
    linked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "chat_id"], name="one_user_per_chat"),
            models.UniqueConstraint(fields=["platform", "user"], name="one_chat_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.platform} chat {self.chat_id}"


class LinkCode(models.Model):
    """A single-use code, valid for ten minutes, that links the chat sending it."""

    code = models.CharField(max_length=16, unique=True, default=_link_code)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"link code for {self.user} (until {self.expires_at:%H:%M})"


# The queue name whose chat receives escalated alerts: supervisors see every high-severity
# alert nobody acknowledged in time, besides the chat it was first posted to.
ESCALATION_QUEUE = "escalations"


class QueueChat(models.Model):
    """The group chat where a queue's unassigned alerts are posted (and, for the queue
    named ``escalations``, where escalated alerts are posted)."""

    queue = models.CharField(max_length=50, unique=True)
    platform = models.CharField(max_length=16, default="telegram")
    chat_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"queue {self.queue} → chat {self.chat_id}"


class AlertCard(models.Model):
    """A case posted to a chat: pending until the platform accepts it, failed when the
    chat refused it or it may have been posted by a pusher that stopped mid-send."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey("retention.Alert", on_delete=models.CASCADE, related_name="cards")
    # The case's priority when the card was queued: the pusher posts the most valuable
    # cases first, so in a burst they reach the chats before the rest.
    priority = models.FloatField(default=0)
    platform = models.CharField(max_length=16, default="telegram")
    chat_id = models.BigIntegerField()
    message_id = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The pusher that owns a pending card until ``claimed_until`` (renewed while it pushes);
    # posting and recording check the token, so a pusher that lost its claim posts nothing.
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Set just before the card is posted: a claimed card with this set whose claim ran out
    # was in flight when its pusher stopped.
    send_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "platform", "chat_id"], name="one_card_per_chat"
            )
        ]
        indexes = [
            models.Index(
                F("priority").desc(),
                "created_at",
                condition=Q(state="pending"),
                name="card_pending_by_priority",
            )
        ]

    def __str__(self) -> str:
        return f"card of alert {self.alert_id} in chat {self.chat_id} ({self.state})"


class ChatPrompt(models.Model):
    """A question the bot asked in a chat and waits to have answered by text: the amount of
    an edited offer, or why an offer is dismissed. Kept in the database so any process
    (webhook workers, the polling bot) can take the answer."""

    class Kind(models.TextChoices):
        EDIT_AMOUNT = "edit_amount", "New offer amount"
        DISMISS_REASON = "dismiss_reason", "Reason to dismiss"

    platform = models.CharField(max_length=16, default="telegram")
    chat_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    intervention_id = models.BigIntegerField()
    offer_type = models.CharField(max_length=32, blank=True)
    card_message_id = models.BigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "chat_id"], name="one_prompt_per_chat")
        ]

    def __str__(self) -> str:
        return f"{self.kind} for intervention {self.intervention_id} in chat {self.chat_id}"
