"""Run the Telegram bot with long polling (development; production uses the webhook)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bots.telegram import build_application


class Command(BaseCommand):
    help = "Run the chat bot with long polling until Ctrl-C (needs TELEGRAM_BOT_TOKEN)."

    def handle(self, *args, **options):
        if not settings.TELEGRAM_BOT_TOKEN:
            raise CommandError("TELEGRAM_BOT_TOKEN is not set: there is no bot to run")
        application = build_application(
            token=settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_API_BASE_URL
        )
        self.stdout.write("bot polling for updates; Ctrl-C stops it")
        application.run_polling(drop_pending_updates=False)
