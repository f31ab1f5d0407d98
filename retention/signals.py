"""Signals that keep the workflow from importing what reacts to it: the chat bot pushes
cards when alerts appear or change hands without retention knowing about it, and the send
task picks up queued messages without the services importing the task module (which
imports the services)."""

from django.dispatch import Signal

# Sent after alerts were raised, assigned or escalated; ``alert_ids`` may be empty when
# many changed at once (listeners then look for everything not yet shown).
alerts_changed = Signal()

# Sent once the transaction that queued outbox messages due now has committed, so a worker
# never looks for a message that is not stored yet; ``message_ids`` are those messages.
# The send task listens (``retention/apps.py``).
outbox_due = Signal()
