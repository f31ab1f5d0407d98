"""Make a one-time code that links a chat to a staff account."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bots.services import link_code_create


class Command(BaseCommand):
    help = "Print a code (valid 10 minutes, single use) for USERNAME to send as /start CODE."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        code = link_code_create(user=user, now=timezone.now())
        return (
            f"To get {user.username}'s alerts in Telegram, send this to the bot within 10 "
            f"minutes: /start {code.code}"
        )
