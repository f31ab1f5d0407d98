"""Rate limits of the chat surface, kept in the default cache so that every process serving
the bot (web workers taking webhooks, the polling bot, the worker pushing cards) counts
against the same numbers: Redis in production, process memory on the embedded default,
which runs in one process.

Both are fixed windows counted with the cache's atomic ``incr``: per chat and clock minute
for what agents send, per clock second for what the bot sends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from asgiref.sync import sync_to_async
from django.core.cache import cache


def _count(key: str, timeout: int) -> int:
    """Add one to ``key``'s count in its window and return the count."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # the window's key expired between add and incr: a new window
        cache.set(key, 1, timeout=timeout)
        return 1


def chat_over_limit(*, chat_id: int, kind: str, limit: int, now: dt.datetime) -> bool:
    """Count one update of ``kind`` (messages, buttons) from the chat; True once the chat
    sent more than ``limit`` of them in this clock minute."""
    return _count(f"bot-limit:{kind}:{chat_id}:{now:%Y%m%d%H%M}", timeout=120) > limit


def pace_wait(*, rate: int, now: float) -> float:
    """Take one of the ``rate`` sends that all processes share in the clock second of
    ``now`` (Unix time): 0 if taken, else the seconds until the next second, when the
    caller tries again."""
    second = int(now)
    if _count(f"bot-pace:{second}", timeout=5) <= rate:
        return 0.0
    return second + 1 - now


async def pace(*, rate: int) -> None:
    """Wait for a turn to send within the bot's overall rate."""
    while (wait := await sync_to_async(pace_wait)(rate=rate, now=time.time())) > 0:
        await asyncio.sleep(wait)
