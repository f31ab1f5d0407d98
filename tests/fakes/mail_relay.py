"""An email backend standing in for an SMTP relay in fault tests, in this process or in a
worker process: each message's ``X-Idempotency-Key`` is appended (and fsynced) to the file
named by ``TEST_MAIL_KEYS`` when the relay takes it, then the relay's answer takes
``TEST_MAIL_DELAY`` seconds, or a minute for the message numbered ``TEST_MAIL_HANG_AT``
(so a test knows which message is in flight when it kills the worker). ``after_send``
lets a test act between two sends."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class RelayBackend(BaseEmailBackend):
    after_send: Callable[[int], None] | None = None  # called with the number of keys so far

    def send_messages(self, email_messages) -> int:
        path = Path(os.environ["TEST_MAIL_KEYS"])
        for message in email_messages:
            with path.open("a") as handle:
                handle.write(message.extra_headers["X-Idempotency-Key"] + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            taken = len(sent_keys(path))
            hang = taken == int(os.environ.get("TEST_MAIL_HANG_AT", "0"))
            time.sleep(60 if hang else float(os.environ.get("TEST_MAIL_DELAY", "0")))
            if RelayBackend.after_send is not None:
                RelayBackend.after_send(taken)
        return len(email_messages)


def sent_keys(path: Path) -> list[str]:
    """Every key the relay took, in order, repeats included."""
    return path.read_text().split() if path.exists() else []
