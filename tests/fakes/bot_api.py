"""A small local server speaking the Telegram Bot API, for python-telegram-bot's
``base_url``: it answers the methods the bot uses, records every call, and can answer
"429, retry after N" to test that the bot slows down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from email.message import Message
from urllib.parse import parse_qsl

from tests.fakes.local_server import LocalJsonServer

TOKEN = "123456:TEST-TOKEN"
SECRET = "webhook-secret-for-tests"


def _decode(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeBotApi(LocalJsonServer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict, float]] = []  # method, parameters, monotonic time
        self.throttle_next = 0  # how many sendMessage calls answer 429
        self.refuse_next = 0  # how many sendMessage calls answer 400, as for a bad message
        self.on_send: Callable[[int], None] | None = None  # called with the count of sends
        self.retry_after = 1
        self.latency = 0.0  # seconds each sendMessage takes, as across the internet
        self._lock = threading.Lock()
        self._message_id = 1000
        self.base_url = f"{self.address}/bot"

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, dict]:
        raw = body.decode()
        if headers.get("Content-Type", "").startswith("application/json"):
            params = json.loads(raw or "{}")
        else:
            params = {k: _decode(v) for k, v in parse_qsl(raw)}
        return self.handle(path.rsplit("/", 1)[-1], params)

    def handle(self, method: str, params: dict) -> tuple[int, dict]:
        if method == "sendMessage" and self.latency:
            time.sleep(self.latency)
        if method == "sendMessage" and self.on_send is not None:
            self.on_send(len(self.sent()) + 1)
        with self._lock:
            self.calls.append((method, params, time.monotonic()))
            if method == "sendMessage" and self.throttle_next > 0:
                self.throttle_next -= 1
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after}",
                    "parameters": {"retry_after": self.retry_after},
                }
            if method == "sendMessage" and self.refuse_next > 0:
                self.refuse_next -= 1
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                }
            if method == "getMe":
                return 200, {
                    "ok": True,
                    "result": {
                        "id": 123456,
                        "is_bot": True,
                        "first_name": "Retention",
                        "username": "rbot",
                    },
                }
            if method in ("sendMessage", "editMessageText"):
                self._message_id += 1
                chat = (
                    {"id": int(params["chat_id"]), "type": "private"}
                    if "chat_id" in params
                    else {"id": 0, "type": "private"}
                )
                return 200, {
                    "ok": True,
                    "result": {
                        "message_id": int(params.get("message_id", self._message_id)),
                        "date": int(time.time()),
                        "chat": chat,
                        "text": params.get("text", ""),
                    },
                }
            return 200, {"ok": True, "result": True}

    def sent(self, method: str = "sendMessage") -> list[dict]:
        with self._lock:
            return [p for m, p, _ in self.calls if m == method]


_update_id = [0]


def _user(chat_id: int) -> dict:
    return {"id": chat_id, "is_bot": False, "first_name": "Agent"}


def message_update(chat_id: int, text: str) -> dict:
    _update_id[0] += 1
    update = {
        "update_id": _update_id[0],
        "message": {
            "message_id": 500 + _update_id[0],
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": _user(chat_id),
            "text": text,
        },
    }
    if text.startswith("/"):
        command = text.split()[0]
        update["message"]["entities"] = [
            {"type": "bot_command", "offset": 0, "length": len(command)}
        ]
    return update


def button_update(chat_id: int, data: str, message_id: int = 77) -> dict:
    _update_id[0] += 1
    return {
        "update_id": _update_id[0],
        "callback_query": {
            "id": f"cb{_update_id[0]}",
            "from": _user(chat_id),
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": "card",
            },
        },
    }


def send(client, update, secret: str = SECRET):
    """Post ``update`` to the webhook as Telegram would, with its secret token."""
    return client.post(
        "/bots/telegram/webhook",
        update,
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=secret,
    )
