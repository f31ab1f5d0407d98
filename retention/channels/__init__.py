"""Channel backends: how an outbox message reaches a customer.

Each backend sends one message and returns the provider's message id, or raises
``TemporaryFailure`` (try again later) or ``PermanentFailure`` (never will work). Backends
are chosen per channel in ``settings.RETENTION_CHANNELS`` (a dotted path each), so a shop
plugs in its own SMS provider without touching the workflow.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class TemporaryFailure(Exception):
    """The provider could not take the message now (outage, rate limit, timeout)."""


class PermanentFailure(Exception):
    """The provider refused the message for good (bad address, rejected content)."""


class Backend(Protocol):
    # True when the provider recognises a repeated idempotency key and sends once: only
    # then may a message whose worker died mid-send be tried again.
    dedupes_by_key: bool
    # True when send() may run in several threads at once (the HTTP backends share one
    # thread-safe client); the outbox then keeps OUTBOX_CONCURRENCY sends in flight.
    concurrent: bool

    def send(self, *, recipient: str, subject: str, body: str, key: str, meta: dict) -> str: ...

    def close(self) -> None: ...


def _backend_class(channel: str):
    path = settings.RETENTION_CHANNELS.get(channel)
    return import_string(path) if path else None


def channel_available(channel: str) -> bool:
    cls = _backend_class(channel)
    return cls is not None and cls.configured()


def open_backend(channel: str) -> Backend:
    """A backend ready to send a batch; the caller closes it (connections are reused)."""
    cls = _backend_class(channel)
    if cls is None or not cls.configured():
        raise PermanentFailure(f"the {channel} channel is not configured")
    return cls()
