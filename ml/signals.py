"""Signals other apps listen to, so ``ml`` never imports the workflow: the retention app
records every change of champion in its audit log, whoever made it (training's gate, a
command, the admin or the console)."""

from django.dispatch import Signal

# Sent inside the transaction that changed the champion, with ``version`` (the new
# champion), ``previous`` (the one it replaced, or None), ``action`` ("promoted" or
# "rolled_back"), ``user`` (None for training and commands) and ``via``.
champion_changed = Signal()
