"""A shop without a bot token: the console works alone, and the worker says once why no
cards reach chat (not every management command)."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from tests.fakes.bot_api import TOKEN


def test_a_worker_starting_without_a_bot_token_says_no_cards_will_reach_chat(settings, caplog):
    settings.TELEGRAM_BOT_TOKEN = ""
    with caplog.at_level(logging.INFO, logger="bots.apps"):
        worker_ready.send(sender=None)
    assert "TELEGRAM_BOT_TOKEN is not set: this worker pushes no alert cards" in caplog.text

    caplog.clear()
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    with caplog.at_level(logging.INFO, logger="bots.apps"):
        worker_ready.send(sender=None)
    assert "TELEGRAM_BOT_TOKEN" not in caplog.text
