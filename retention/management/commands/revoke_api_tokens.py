"""Revoke every API token of a user."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from retention.services.tokens import api_tokens_revoke


class Command(BaseCommand):
    help = "Revoke all API tokens of USER."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> str:
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user {username!r}") from exc
        return f"{api_tokens_revoke(user=user)} tokens of {username} revoked"
