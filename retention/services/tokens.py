"""API tokens: issued for a user with an expiry, shown once, stored only as a digest."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS

NOT_STAFF = "{user} is not an active staff account; API tokens are for staff only"
BAD_DAYS = "a token lives at least 1 day, got {days}"


class TokenRefused(ValueError):
    """The user may not hold an API token, or the lifetime makes no sense."""


def api_token_create(*, user, now: dt.datetime, days: int | None = None) -> tuple[AuthToken, str]:
    """Issue a token for ``user`` that expires after ``days`` (``API_TOKEN_TTL_DAYS`` by
    default). Returns the stored row and the token itself, which exists nowhere else: only
    its SHA-512 digest is kept, so whoever issues it must hand it over now."""
    days = settings.API_TOKEN_TTL_DAYS if days is None else days
    if days < 1:
        raise TokenRefused(BAD_DAYS.format(days=days))
    if not (user.is_active and user.is_staff):
        raise TokenRefused(NOT_STAFF.format(user=user.get_username()))
    digest, token = get_digest_token()
    created = AuthToken(
        digest=digest,
        token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH],
        user=user,
        expiry=now + dt.timedelta(days=days),
    )
    created.save()
    return created, token


def api_tokens_revoke(*, user) -> int:
    """Revoke every token of ``user`` (a leaked token, a colleague leaving)."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted
