"""Issue an API token for a staff user; it is printed once and stored only as a digest."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention.services.tokens import TokenRefused, api_token_create


class Command(BaseCommand):
    help = "Issue an API token for USER (expires after --days, default API_TOKEN_TTL_DAYS)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, username: str, days: int | None, **options) -> str:
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user {username!r}") from exc
        try:
            created, token = api_token_create(user=user, now=timezone.now(), days=days)
        except TokenRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Token for {username}, valid until {created.expiry:%Y-%m-%d %H:%M %Z}:")
        return token
