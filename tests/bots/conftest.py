"""The bot's tests talk to a local fake Bot API through the real webhook."""

import uuid

import pytest

from bots import runner
from tests.fakes.bot_api import SECRET, TOKEN, FakeBotApi


@pytest.fixture
def telegram(settings):
    settings.TELEGRAM_SECONDS_PER_CHAT = 0.01  # pacing tests restore Telegram's 1 s
    # Rate-limit counters live in a cache shared by every process: each test gets its own.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
    with FakeBotApi() as api:
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.TELEGRAM_API_BASE_URL = api.base_url
        settings.TELEGRAM_WEBHOOK_SECRET = SECRET
        runner.reset()
        yield api
        runner.reset()
