"""Signals other apps listen to, so the workflow never imports its surfaces (the chat bot
pushes cards when alerts appear or change hands, without retention knowing about it)."""

from django.dispatch import Signal

# Sent after alerts were raised, assigned or escalated; ``alert_ids`` may be empty when
# many changed at once (listeners then look for everything not yet shown).
alerts_changed = Signal()
