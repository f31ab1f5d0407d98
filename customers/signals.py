"""Signals other apps listen to, so shop data never imports the apps above it."""

from django.dispatch import Signal

# Sent inside the erasure's transaction once every app removed its part, with
# ``customer``, ``actor`` (a user or None), ``via``, ``at`` and ``counts``; the workflow
# records it in its audit trail.
customer_erased = Signal()

# Sent inside ``generate_shop``'s transaction just before a replaced shop's data is
# deleted, with no arguments: apps above drop what they derived from its customers (a
# scoring run whose scores went with them would still count as that day's scoring).
shop_replaced = Signal()
