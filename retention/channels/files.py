"""The demo's channels: messages are written to files under var/ instead of reaching
people. SMS are appended to a JSON-lines file (the SMS twin of Django's file email
backend); e-mails go through Django's file backend with the recipient masked.

The files only show what was sent, so recipients are masked as on the bot's cards: the
outbox row keeps the address a receipt or a resend needs. Bodies still name the customer
and carry coupon codes, so an erasure removes the customer's messages from these files.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Collection
from pathlib import Path

from django.conf import settings
from django.core.mail.backends import filebased

from customers.privacy import mask_email, mask_phone

# How Django's file email backend ends each message in a file.
EMAIL_SEPARATOR = b"-" * 79 + b"\n"


def sent_sms_path() -> Path:
    return settings.VAR_DIR / "sent-sms.jsonl"


class FileSmsChannel:
    dedupes_by_key = False
    concurrent = False

    @classmethod
    def configured(cls) -> bool:
        return True

    def send(self, *, recipient: str, subject: str, body: str, key: str, meta: dict) -> str:
        line = json.dumps({"to": mask_phone(recipient), "text": body, "key": key}) + "\n"
        with sent_sms_path().open("a") as handle:
            # An erasure rewriting the file holds the same lock.
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)
        return key

    def close(self) -> None:
        pass


class MaskedFileEmailBackend(filebased.EmailBackend):
    """Django's file backend with the recipients masked in the written message."""

    def write_message(self, message) -> None:
        mime = message.message()
        mime.replace_header("To", ", ".join(mask_email(address) for address in message.to))
        self.stream.write(mime.as_bytes() + b"\n")
        self.stream.write(EMAIL_SEPARATOR)


def _rewrite(path: Path, keep: Callable[[bytes], bool], separator: bytes) -> int:
    """Drop the records of ``path`` that ``keep`` refuses, in place under the file's lock
    (a writer appending meanwhile waits, and its line is not lost); returns how many."""
    with path.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        records = [r for r in handle.read().split(separator) if r]
        kept = [r for r in records if keep(r)]
        if len(kept) < len(records):
            handle.seek(0)
            handle.write(b"".join(r + separator for r in kept))
            handle.truncate()
    return len(records) - len(kept)


def sent_files_erase(*, keys: Collection[str], holds_personal_data: Callable[[str], bool]) -> int:
    """Remove from the demo's sent-message files every message with one of the
    idempotency ``keys`` or with text ``holds_personal_data`` finds; returns how many."""

    def keep_sms(line: bytes) -> bool:
        sent = json.loads(line)
        text = f"{sent.get('to', '')}\n{sent.get('text', '')}"
        return sent.get("key") not in keys and not holds_personal_data(text)

    def keep_email(message: bytes) -> bool:
        text = message.decode("utf-8", errors="replace")
        return not any(key in text for key in keys) and not holds_personal_data(text)

    removed = 0
    if sent_sms_path().exists():
        removed += _rewrite(sent_sms_path(), keep_sms, b"\n")
    mail_dir = Path(settings.EMAIL_FILE_PATH)
    if mail_dir.is_dir():
        for path in sorted(mail_dir.glob("*.log")):
            removed += _rewrite(path, keep_email, EMAIL_SEPARATOR)
    return removed
