"""Signed webhooks to the shop's own system (its app sends a push, or its CRM acts).

The signature is HMAC-SHA256 over ``"{timestamp}." + body`` with ``WEBHOOK_SECRET``, sent as
``X-Retention-Signature: sha256=<hex>`` beside ``X-Retention-Timestamp``, so the receiver can
check both who sent it and that it is fresh; ``Idempotency-Key`` lets it drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.conf import settings

from retention.channels.http import HttpBackend


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(HttpBackend):
    @classmethod
    def configured(cls) -> bool:
        return bool(settings.WEBHOOK_URL and settings.WEBHOOK_SECRET)

    def __init__(self) -> None:
        super().__init__(timeout=settings.RETENTION_HTTP_TIMEOUT)

    def send(self, *, recipient: str, subject: str, body: str, key: str, meta: dict) -> str:
        content = json.dumps(
            {"customer": recipient, "subject": subject, "body": body, "key": key, **meta}
        ).encode()
        timestamp = str(int(time.time()))
        self.post(
            settings.WEBHOOK_URL,
            content=content,
            headers={
                "Content-Type": "application/json",
                "X-Retention-Timestamp": timestamp,
                "X-Retention-Signature": signature(settings.WEBHOOK_SECRET, timestamp, content),
                "Idempotency-Key": key,
            },
        )
        return key
