"""Who may use an API endpoint: every view names one of these explicitly."""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from rest_framework.permissions import BasePermission

from retention.channels.webhook import signature
from retention.roles import ADMIN, AGENT


def in_roles(user, *names: str) -> bool:
    """Whether ``user`` is active staff with one of these roles (superusers have all):
    the one role check behind the API, the console and the bot."""
    return _in_groups(user, set(names))


def _in_groups(user, names: set[str]) -> bool:
    # Staff status is the switch that turns an account off without touching its groups,
    # and it gates the admin too: an account without it reads nothing here either.
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name__in=names).exists()


class IsAdminRole(BasePermission):
    """Admins: they own the shop data and may write it."""

    message = "Only the Admin role may do this."

    def has_permission(self, request, view) -> bool:
        return _in_groups(request.user, {ADMIN})


class IsStaffRole(BasePermission):
    """Admins and Agents: staff who may read shop data."""

    message = "Only the Admin and Agent roles may read this."

    def has_permission(self, request, view) -> bool:
        return _in_groups(request.user, {ADMIN, AGENT})


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
