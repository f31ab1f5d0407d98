"""The Telegram adapter: python-telegram-bot handlers that hand each update to
``bots.actions`` and show its reply, and the card pusher that respects Telegram's limits.

Handlers reach the ORM only through ``bots.actions`` wrapped in ``sync_to_async``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots import actions
from bots.cards import Message

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3  # times one card waits out a "retry after" before it is left pending


def keyboard(message: Message) -> InlineKeyboardMarkup | None:
    rows = [
        [
            InlineKeyboardButton(b.text, url=b.url)
            if b.url
            else InlineKeyboardButton(b.text, callback_data=b.data)
            for b in row
        ]
        for row in message.buttons
        if row
    ]
    return InlineKeyboardMarkup(rows) if rows else None


async def _show(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: actions.Reply) -> None:
    query = update.callback_query
    pressed = None
    if query is not None:
        await query.answer(reply.notice[:200] or None, show_alert=len(reply.notice) > 60)
        if reply.edit is not None:
            pressed = (update.effective_chat.id, query.message.message_id)
            await _edit(context.bot, *pressed, reply.edit)
    if reply.message is not None:
        await context.bot.send_message(
            update.effective_chat.id, reply.message.text, reply_markup=keyboard(reply.message)
        )
    for chat_id, message_id, card in reply.redraw:
        if (chat_id, message_id) != pressed:
            await _edit(context.bot, chat_id, message_id, card)


async def _edit(bot: Bot, chat_id: int, message_id: int, message: Message) -> None:
    try:
        await bot.edit_message_text(
            message.text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard(message)
        )
    except BadRequest as exc:  # "message is not modified": the card already says it
        log.debug("card %s in chat %s not edited: %s", message_id, chat_id, exc)
    except TelegramError as exc:  # a stale card elsewhere must not fail the agent's action
        log.warning("card %s in chat %s not redrawn: %s", message_id, chat_id, exc)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start CODE links this chat to the staff account that made the code."""
    code = context.args[0] if context.args else ""
    reply = await sync_to_async(actions.start)(
        chat_id=update.effective_chat.id, code=code, now=timezone.now()
    )
    await _show(update, context, reply)


async def unlink(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unlink stops this chat acting for anyone."""
    reply = await sync_to_async(actions.unlink)(
        chat_id=update.effective_chat.id, now=timezone.now()
    )
    await _show(update, context, reply)


async def command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/alerts, /customer, /stats and /help."""
    name = update.effective_message.text.split()[0].lstrip("/").split("@")[0]
    reply = await sync_to_async(actions.command)(
        chat_id=update.effective_chat.id, name=name, args=context.args or [], now=timezone.now()
    )
    await _show(update, context, reply)


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A tap on a card's button."""
    reply = await sync_to_async(actions.button)(
        chat_id=update.effective_chat.id, data=update.callback_query.data, now=timezone.now()
    )
    await _show(update, context, reply)


async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Plain text: the answer to the bot's last question (an amount, a reason)."""
    reply = await sync_to_async(actions.text)(
        chat_id=update.effective_chat.id, body=update.effective_message.text, now=timezone.now()
    )
    await _show(update, context, reply)


def build_application(*, token: str, base_url: str | None = None) -> Application:
    builder = ApplicationBuilder().token(token)
    if base_url:
        builder = builder.base_url(base_url)
    application = builder.build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("unlink", unlink))
    application.add_handler(CommandHandler(["alerts", "customer", "stats", "help"], command))
    application.add_handler(CallbackQueryHandler(button))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    return application


# --- Pushing cards ---------------------------------------------------------------------------


class Clock(Protocol):
    """Where the pacer reads the time and waits: the event loop's clock, or a test's."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    def time(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Bucket:
    """At most ``rate`` sends in any second across all chats: a token bucket holding one
    second's worth, so a fresh batch goes out at once and a long one at ``rate``."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.updated: float | None = None
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:
            now = self.clock.time()
            if self.updated is not None:
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                await self.clock.sleep((1 - self.tokens) / self.rate)
                self.tokens, self.updated = 1.0, self.clock.time()
            self.tokens -= 1


def _seconds(retry_after: int | dt.timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, dt.timedelta) else retry_after


async def _send_card(bot: Bot, pace: _Bucket, chat_id: int, message: Message) -> int:
    for _ in range(MAX_RETRY_AFTER + 1):
        await pace.take()
        try:
            sent = await bot.send_message(chat_id, message.text, reply_markup=keyboard(message))
            return sent.message_id
        except RetryAfter as exc:  # Telegram asks us to slow down: wait as long as it says
            await pace.clock.sleep(_seconds(exc.retry_after))
    raise RetryAfter(0)


class Pacer:
    """Telegram's limits for one push run, across its batches: the overall rate, and the
    time of the last post to each chat, so the first card of a batch still waits for the
    last one of the batch before."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.bucket = _Bucket(settings.TELEGRAM_MESSAGES_PER_SECOND, clock)
        self.per_chat = settings.TELEGRAM_SECONDS_PER_CHAT
        self.last: dict[int, float] = {}

    async def wait_for_chat(self, chat_id: int) -> None:
        last = self.last.get(chat_id)
        wait = 0.0 if last is None else last + self.per_chat - self.clock.time()
        if wait > 0:
            await self.clock.sleep(wait)

    def posted(self, chat_id: int) -> None:
        self.last[chat_id] = self.clock.time()


async def push(
    bot: Bot,
    cards: list[tuple[int, int, Message]],
    *,
    start: Callable[[int], Awaitable[bool]],
    record: Callable[[int, int | str | None], Awaitable[None]],
    pacer: Pacer,
) -> dict[int, int | str | None]:
    """Send ``(card id, chat id, message)`` cards: chats in parallel, each chat's cards a
    second apart, everything within the overall rate. ``start(card id)`` is awaited right
    before each post and may refuse it (the card is no longer ours); ``record`` gets each
    outcome at once: the message id, an error text for cards the chat refused, or None
    when Telegram could not be reached. Returns the same outcomes by card id."""
    by_chat: dict[int, list[tuple[int, Message]]] = {}
    for card_id, chat_id, message in cards:
        by_chat.setdefault(chat_id, []).append((card_id, message))
    results: dict[int, int | str | None] = {}

    async def chat_worker(chat_id: int, queue: list[tuple[int, Message]]) -> None:
        for card_id, message in queue:
            await pacer.wait_for_chat(chat_id)
            if not await start(card_id):
                continue
            result: int | str | None = None
            try:
                result = await _send_card(bot, pacer.bucket, chat_id, message)
            except (Forbidden, BadRequest) as exc:  # bot blocked, chat gone: no retry helps
                result = f"{type(exc).__name__}: {exc.message}"
            except TelegramError as exc:  # network trouble: stays pending for the next run
                log.warning("card %s to chat %s not sent: %s", card_id, chat_id, exc)
            pacer.posted(chat_id)
            results[card_id] = result
            await record(card_id, result)

    await asyncio.gather(*(chat_worker(c, q) for c, q in by_chat.items()))
    return results
