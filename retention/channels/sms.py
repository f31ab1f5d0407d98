"""SMS through an HTTP provider: ``POST {SMS_PROVIDER_URL}`` with ``{"to", "text"}`` JSON,
the API key as a bearer token and the idempotency key as ``Idempotency-Key``; the answer's
``id`` is the provider's message id. Shops with another provider's API point
``RETENTION_CHANNELS["sms"]`` at their own subclass."""

from __future__ import annotations

import json

from django.conf import settings

from retention.channels import PermanentFailure
from retention.channels.http import HttpBackend


class HttpSmsChannel(HttpBackend):
    @classmethod
    def configured(cls) -> bool:
        return bool(settings.SMS_PROVIDER_URL)

    def __init__(self) -> None:
        super().__init__(timeout=settings.RETENTION_HTTP_TIMEOUT)

    def payload(self, *, recipient: str, body: str, meta: dict) -> dict:
        return {"to": recipient, "text": body, "reference": meta.get("reference", "")}

    def send(self, *, recipient: str, subject: str, body: str, key: str, meta: dict) -> str:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if settings.SMS_PROVIDER_KEY:
            headers["Authorization"] = f"Bearer {settings.SMS_PROVIDER_KEY}"
        response = self.post(
            settings.SMS_PROVIDER_URL,
            content=json.dumps(self.payload(recipient=recipient, body=body, meta=meta)).encode(),
            headers=headers,
        )
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError) as exc:
            raise PermanentFailure(f"unexpected provider answer: {response.text[:200]}") from exc
