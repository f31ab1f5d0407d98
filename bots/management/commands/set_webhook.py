"""Point Telegram at this app's webhook, with the secret token it must send back."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from telegram import Bot


class Command(BaseCommand):
    help = "Register CONSOLE_BASE_URL/bots/telegram/webhook with Telegram (or --url)."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="public HTTPS address of the webhook")

    def handle(self, *args, **options):
        if not (settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_WEBHOOK_SECRET):
            raise CommandError("set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first")
        url = options["url"] or settings.CONSOLE_BASE_URL.rstrip("/") + reverse("telegram-webhook")

        async def register() -> bool:
            async with Bot(
                settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_API_BASE_URL
            ) as bot:
                return await bot.set_webhook(url, secret_token=settings.TELEGRAM_WEBHOOK_SECRET)

        if not asyncio.run(register()):
            raise CommandError("Telegram refused the webhook")
        return f"webhook set to {url}"
