"""The Telegram adapter: python-telegram-bot handlers that hand each update to
``bots.actions`` and show its reply, and the card pusher that respects Telegram's limits.

Handlers reach the ORM only through ``bots.actions`` wrapped in ``sync_to_async``. Every
message the bot sends, a reply from a webhook handler or a pushed card, takes its turn from
one budget shared by all processes (:class:`SharedPace`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from bots import actions, limits
from bots.cards import Message

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3  # times one card waits out a "retry after" before it is left pending
SOMETHING_WRONG = "Something went wrong, nothing was changed."
REPLY_LOST = "Done, but the answer could not be shown here. /alerts shows where things stand."
# Bot API methods that post or change a message in a chat, and so count against the bot's
# overall rate; answering a button press or asking who the bot is does not.
PACED_PREFIXES = ("send", "edit", "copy", "forward")


class SharedPace(BaseRateLimiter[None]):
    """python-telegram-bot's hook before every Bot API request: messages wait for a turn
    within ``TELEGRAM_MESSAGES_PER_SECOND``, counted across all processes."""

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Any:
        if endpoint.startswith(PACED_PREFIXES):
            await limits.pace(rate=settings.TELEGRAM_MESSAGES_PER_SECOND)
        return await callback(*args, **kwargs)


def paced_bot(*, token: str, base_url: str | None = None) -> ExtBot:
    """A bot whose requests go through :class:`SharedPace` (redrawing posted cards)."""
    return ExtBot(
        token, base_url=base_url or "https://api.telegram.org/bot", rate_limiter=SharedPace()
    )


def pusher_bot(*, token: str, base_url: str | None = None) -> ExtBot:
    """A bot for :func:`push`, which takes each turn of the overall rate itself, so that
    the turn goes to the most valuable card ready at that moment."""
    return ExtBot(token, base_url=base_url or "https://api.telegram.org/bot")


class ReplyNotShown(Exception):
    """The action was done, but Telegram refused or lost the answer to it."""


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
    try:
        await _show_reply(update, context, reply)
    except TelegramError as exc:
        raise ReplyNotShown(str(exc)) from exc


async def _show_reply(
    update: Update, context: ContextTypes.DEFAULT_TYPE, reply: actions.Reply
) -> None:
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


async def failed(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An exception a handler raised: logged, and the chat is told, never left waiting."""
    log.error("bot update failed: %r", context.error, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    # An action that raised rolled its transaction back; one whose answer was lost is done.
    told = REPLY_LOST if isinstance(context.error, ReplyNotShown) else SOMETHING_WRONG
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):  # already answered, or too old to answer
            await update.callback_query.answer()
    try:
        await context.bot.send_message(update.effective_chat.id, told)
    except TelegramError as exc:
        log.warning("chat %s not told of the failure: %s", update.effective_chat.id, exc)


def build_application(*, token: str, base_url: str | None = None) -> Application:
    builder = ApplicationBuilder().token(token).rate_limiter(SharedPace())
    if base_url:
        builder = builder.base_url(base_url)
    application = builder.build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("unlink", unlink))
    application.add_handler(CommandHandler(["alerts", "customer", "stats", "help"], command))
    application.add_handler(CallbackQueryHandler(button))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
    application.add_error_handler(failed)
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


def _seconds(retry_after: int | dt.timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, dt.timedelta) else retry_after


async def _send_card(
    bot: Bot, clock: Clock, chat_id: int, message: Message, turn: Callable[[], Awaitable[None]]
) -> int:
    for attempt in range(MAX_RETRY_AFTER + 1):
        if attempt:
            await turn()  # the first attempt's turn was taken to choose this card
        try:
            sent = await bot.send_message(chat_id, message.text, reply_markup=keyboard(message))
            return sent.message_id
        except RetryAfter as exc:  # Telegram asks us to slow down: wait as long as it says
            await clock.sleep(_seconds(exc.retry_after))
    raise RetryAfter(0)


async def redraw(bot: Bot, cards: list[tuple[int, int, Message]]) -> None:
    """Edit posted ``(chat id, message id, message)`` cards in place, within the overall
    rate (``bot`` is a :func:`paced_bot`); a card the chat no longer has is skipped."""
    for chat_id, message_id, message in cards:
        await _edit(bot, chat_id, message_id, message)


class Pacer:
    """The time of the last post to each chat during one push run, across its batches, so
    the first card of a batch still waits for the last one of the batch before (the
    overall rate is taken turn by turn: see :func:`push`)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.per_chat = settings.TELEGRAM_SECONDS_PER_CHAT
        self.last: dict[int, float] = {}

    def ready_in(self, chat_id: int) -> float:
        """Seconds until the chat may take its next card (0 or less: now)."""
        last = self.last.get(chat_id)
        return float("-inf") if last is None else last + self.per_chat - self.clock.time()

    def posted(self, chat_id: int) -> None:
        self.last[chat_id] = self.clock.time()


Card = tuple[int, int, Message]  # card id, chat id, what it shows
REFILL_BELOW = 50  # ask ``more`` for cards when fewer than this wait
REPOLL_SECONDS = 1.0  # after ``more`` came back short, ask again no sooner than this


async def push(
    bot: Bot,
    cards: list[Card],
    *,
    start: Callable[[int], Awaitable[bool]],
    record: Callable[[int, int | str | None], Awaitable[None]],
    pacer: Pacer,
    turn: Callable[[], Awaitable[None]],
    more: Callable[[], Awaitable[list[Card]]] | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> dict[int, int | str | None]:
    """Post ``cards``, given most valuable first, as fast as Telegram allows: each turn of
    the overall rate (``turn``) goes to the first card in that order whose chat may take
    one (``pacer``: a second after its last), so the most valuable cards leave first and
    no chat's backlog holds up the others. Chats are posted to in parallel, one card in
    flight per chat. ``more`` is asked for further cards (in the same order) while few
    wait, and once more before finishing; the run ends when none are left, Telegram
    cannot be reached, or ``stopped()`` (the lease was lost).

    ``start(card id)`` is awaited right before each post and may refuse it (the card is
    no longer ours); ``record`` gets each outcome at once: the message id, an error text
    for cards the chat refused, or None when Telegram could not be reached. Returns the
    same outcomes by card id. ``bot`` takes no turns of its own (:func:`pusher_bot`).
    """
    clock = pacer.clock
    waiting: dict[int, deque[tuple[int, int, Message]]] = {}  # chat: (rank, card, message)
    ranks = itertools.count()
    busy: set[int] = set()
    flying: set[asyncio.Task] = set()
    results: dict[int, int | str | None] = {}
    landed = asyncio.Event()
    unreachable = False

    def add(batch: list[Card]) -> None:
        for card_id, chat_id, message in batch:
            waiting.setdefault(chat_id, deque()).append((next(ranks), card_id, message))

    def count() -> int:
        return sum(len(queue) for queue in waiting.values())

    def ready() -> list[int]:
        return [c for c, q in waiting.items() if q and c not in busy and pacer.ready_in(c) <= 0]

    async def post(chat_id: int, card_id: int, message: Message) -> None:
        nonlocal unreachable
        try:
            if not await start(card_id):
                return
            result: int | str | None = None
            try:
                result = await _send_card(bot, clock, chat_id, message, turn)
            except (Forbidden, BadRequest) as exc:  # bot blocked, chat gone: no retry helps
                result = f"{type(exc).__name__}: {exc.message}"
            except TelegramError as exc:  # network trouble: stays pending for the next run
                log.warning("card %s to chat %s not sent: %s", card_id, chat_id, exc)
                unreachable = True
            pacer.posted(chat_id)
            results[card_id] = result
            await record(card_id, result)
        finally:
            busy.discard(chat_id)
            landed.set()

    async def until_landed() -> None:
        landed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(landed.wait(), REPOLL_SECONDS)

    add(cards)
    short_at = float("-inf")  # when ``more`` last gave fewer cards than asked for
    while not (unreachable or stopped()):
        idle = not flying and not count()
        if (
            more is not None
            and count() < REFILL_BELOW
            and (idle or clock.time() - short_at >= REPOLL_SECONDS)
        ):
            batch = await more()
            if not batch and idle:
                break
            add(batch)
            if len(batch) < REFILL_BELOW:
                short_at = clock.time()
        elif idle:
            break
        chats = ready()
        if not chats:
            later = [pacer.ready_in(c) for c, q in waiting.items() if q and c not in busy]
            if later:
                await clock.sleep(min(later))
            elif flying:
                await until_landed()
            continue
        await turn()
        chats = ready()  # the turn may have taken a while: chats may have landed
        best = min(chats, key=lambda c: waiting[c][0][0])
        _, card_id, message = waiting[best].popleft()
        busy.add(best)
        task = asyncio.create_task(post(best, card_id, message))
        flying.add(task)
        task.add_done_callback(flying.discard)
    if flying:
        await asyncio.gather(*flying)
    return results
