"""A local SMS provider speaking the HTTP API ``HttpSmsChannel`` expects, for tests and
benchmarks: it records every request, drops repeated idempotency keys like real providers
do, and can be switched into an outage (503)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from email.message import Message

from tests.fakes.local_server import LocalJsonServer


class FakeProvider(LocalJsonServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[str] = Counter()  # idempotency key -> requests seen
        self.delivered: dict[str, dict] = {}  # idempotency key -> message, once each
        self.numbers: dict[str, int] = {}  # idempotency key -> the provider's message number
        self.down = False
        self.delay = 0.0  # seconds each answer takes, like a provider across the internet
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        self.url = f"{self.address}/messages"

    def answer(self, path: str, headers: Message, body: bytes) -> tuple[int, dict]:
        key = headers.get("Idempotency-Key", "")
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
            self.requests[key] += 1
            if self.down:
                return 503, {"error": "maintenance"}
            if key not in self.delivered:
                self.delivered[key] = json.loads(body)
                self.numbers[key] = len(self.numbers) + 1
        return 200, {"id": f"sms-{self.numbers[key]}"}
