"""Real Celery worker processes for fault tests: started with ``celery worker --pool
solo`` on the test database and broker, each consuming its own queue so a test decides
which worker gets which task, and killed (or frozen) with signals like a real outage.

A killed worker leaves its task unacknowledged in Redis, and the broker hands it back to
whoever consumes that queue once the visibility timeout (an hour) has passed: a worker of a
later run, started under the same name, would run that stale task before the test's own.
So each queue name is new for every test, and a test's unacknowledged tasks are dropped
when it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database (pytest-django's ``test_<NAME>``) as a URL for the worker."""
    db = connection.settings_dict
    user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{user}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A worker consuming ``queue``, the name a test sends its tasks to."""

    def __init__(self, queue: str, env: dict[str, str]) -> None:
        self.queue = queue
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "retention",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.retention.worker_settings",
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                **env,
            },
        )

    def kill(self) -> None:
        """``kill -9``: nothing after this instant runs, not even a finally."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _forget(queues: set[str]) -> None:
    """Remove what the broker keeps of ``queues``: the tasks a killed or frozen worker took
    and never acknowledged, so they are never handed to anyone, and the queues' bindings."""
    from retention.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        client = channel.client
        stale = [
            tag
            for tag, stored in client.hgetall(channel.unacked_key).items()
            if json.loads(stored)[2] in queues  # [message, exchange, routing key]
        ]
        if stale:
            client.zrem(channel.unacked_index_key, *stale)
            client.hdel(channel.unacked_key, *stale)
        for queue in queues:
            client.delete(
                queue,
                channel.keyprefix_queue % queue,
                channel.keyprefix_binding_permanent % queue,
            )


@contextmanager
def workers() -> Iterator[Callable[..., Worker]]:
    """``start(name, **env)`` starts a worker on a queue of its own (``worker.queue``);
    all are stopped at the end."""
    from retention.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise RuntimeError("worker fault tests need the Redis broker (make test-pg)")
    app.control.purge()  # tasks other tests left behind
    started: list[Worker] = []
    test = uuid.uuid4().hex[:8]

    def start(name: str, **env: str) -> Worker:
        worker = Worker(f"{name}-{test}", env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        if started:
            _forget({worker.queue for worker in started})


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")
