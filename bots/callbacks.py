"""Button callback data: built and parsed here only, so a button and the handler that
reads it cannot drift apart. Short and prefixed (``"iv:approve:42"``): Telegram allows 64
bytes."""

from __future__ import annotations

ALERT = "al"
INTERVENTION = "iv"
MAX_BYTES = 64


def callback(kind: str, verb: str, *args: object) -> str:
    data = ":".join([kind, verb, *(str(a) for a in args)])
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


def parse(data: str) -> tuple[str, str, str]:
    """``"iv:type:42:percent_off"`` → ``("iv", "type", "42:percent_off")``: the kind, the
    verb, and the rest for the verb's handler."""
    kind, _, rest = data.partition(":")
    verb, _, arg = rest.partition(":")
    return kind, verb, arg
