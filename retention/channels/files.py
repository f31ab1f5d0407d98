"""The demo's SMS channel: messages are appended to a JSON-lines file under var/ instead of
reaching phones, the SMS twin of Django's file email backend."""

from __future__ import annotations

import json

from django.conf import settings


class FileSmsChannel:
    dedupes_by_key = False
    concurrent = False

    @classmethod
    def configured(cls) -> bool:
        return True

    def send(self, *, recipient: str, subject: str, body: str, key: str, meta: dict) -> str:
        path = settings.VAR_DIR / "sent-sms.jsonl"
        with path.open("a") as handle:
            handle.write(json.dumps({"to": recipient, "text": body, "key": key}) + "\n")
        return key

    def close(self) -> None:
        pass
