"""Callers without a user account: channel providers, who prove who they are by signing.

Staff endpoints use the role checks in ``core.permissions``.
"""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from rest_framework.permissions import BasePermission

from retention.channels.webhook import signature


class SignedByProvider(BasePermission):
    """Channel providers posting delivery receipts: no user, but an HMAC-SHA256 signature
    over ``"{timestamp}." + body`` with ``RECEIPTS_SECRET``, at most five minutes old."""

    message = "A valid, fresh X-Retention-Signature is required."
    max_age_seconds = 300

    def has_permission(self, request, view) -> bool:
        secret = settings.RECEIPTS_SECRET
        timestamp = request.headers.get("X-Retention-Timestamp", "")
        given = request.headers.get("X-Retention-Signature", "")
        # Headers are attacker-chosen text: only ASCII digits of a plausible length are a
        # timestamp ('²'.isdigit() is true, and int() refuses over 4,300 digits), and the
        # signatures are compared as bytes, which compare_digest takes whatever they hold.
        if not secret or not (timestamp.isascii() and timestamp.isdigit()):
            return False
        if len(timestamp) > 12 or abs(time.time() - int(timestamp)) > self.max_age_seconds:
            return False
        expected = signature(secret, timestamp, request.body).encode()
        return hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape"))
