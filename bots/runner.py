"""One python-telegram-bot ``Application`` per web process, running on its own event loop
in a background thread, so synchronous Django views can hand it webhook updates.

The application keeps an HTTP connection pool bound to its loop; one long-lived loop
keeps that pool valid across requests, where ``asyncio.run`` per request would not.
"""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from telegram import Update
from telegram.ext import Application

from bots.telegram import build_application

_lock = threading.Lock()
_runner: BotRunner | None = None


class BotRunner:
    def __init__(self, application: Application) -> None:
        self.application = application
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(application.initialize())

    def _call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def process(self, data: dict) -> None:
        update = Update.de_json(data, self.application.bot)
        self._call(self.application.process_update(update))

    def close(self) -> None:
        # Handlers used the database from asgiref's worker thread: close its connection
        # there, or it outlives the application.
        self._call(sync_to_async(connections.close_all)())
        self._call(self.application.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def runner() -> BotRunner:
    global _runner
    with _lock:
        if _runner is None:
            _runner = BotRunner(
                build_application(
                    token=settings.TELEGRAM_BOT_TOKEN, base_url=settings.TELEGRAM_API_BASE_URL
                )
            )
        return _runner


def reset() -> None:
    """Forget the running application (tests point the bot at a new fake server)."""
    global _runner
    with _lock:
        if _runner is not None:
            _runner.close()
        _runner = None
